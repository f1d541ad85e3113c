import Foundation

/// Blocking work (a C library's long call, bulk file I/O) run on a thread of its own, off
/// Swift's cooperative pool, and awaited: the pool's few threads (two on this machine)
/// keep running everything else meanwhile.
public enum OffPool {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.name = "leadflow.blocking"
            thread.start()
        }
    }
}

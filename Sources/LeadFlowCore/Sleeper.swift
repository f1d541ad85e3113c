/// Waits. Injected wherever the pipeline backs off, so tests can check the waits it asks
/// for without spending them.
public protocol Sleeper: Sendable {
    func sleep(for duration: Duration) async throws
}

/// The real clock's wait.
public struct TaskSleeper: Sleeper {
    public init() {}
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

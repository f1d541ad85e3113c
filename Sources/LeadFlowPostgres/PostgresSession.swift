import Foundation
import LeadFlowCore
import Logging

/// One Postgres session on a thread of its own. libpq's calls block until the server
/// answers; they run on this thread, one at a time in the order asked, never on Swift's
/// cooperative pool (two lanes blocked there would stall every other task of the process
/// on a 2-core machine, the lease heartbeat included). Callers `await` the work, as they
/// await curl's transfers on `CurlHTTPClient`'s thread.
///
/// The connection is made, used and closed on that thread; nothing else touches it. A
/// call cannot be interrupted half way (libpq has no such thing short of a cancel
/// request): a cancelled task's job still runs, and its result is dropped.
public final class PostgresSession: Sendable {
    private let worker: SessionWorker
    /// The server's process id for this session (to cancel or terminate it from elsewhere).
    public let backendPID: Int32

    /// Connects on a new thread; throws what connecting threw.
    /// - SeeAlso: https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PQCONNECTDB
    public init(conninfo: String, logger: Logger = Logger(label: "leadflow.postgres")) throws {
        worker = SessionWorker()
        backendPID = try worker.start(conninfo: conninfo, logger: logger)
    }

    /// Connects without holding a cooperative thread while the server answers.
    public static func connect(conninfo: String, logger: Logger = Logger(label: "leadflow.postgres")) async throws -> PostgresSession {
        try await OffPool.run { try PostgresSession(conninfo: conninfo, logger: logger) }
    }

    /// The thread ends once its queued work is done; the connection closes with it.
    deinit { worker.stop() }

    /// Runs `body` with the connection on the session's thread.
    public func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            worker.enqueue { connection in
                guard let connection else { return continuation.resume(throwing: SessionClosed()) }
                continuation.resume(with: Result { try body(connection) })
            }
        }
    }

    /// The same for code that cannot await (a test's set-up): blocks the calling thread.
    public func runBlocking<T>(_ body: @escaping (PostgresConnection) throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<T, any Error>?
        worker.enqueue { connection in
            if let connection { outcome = Result { try body(connection) } } else { outcome = .failure(SessionClosed()) }
            done.signal()
        }
        done.wait()
        return try outcome!.get()
    }
}

/// The session was closed before the work could run.
public struct SessionClosed: LeadFlowError {
    public var code: String { "postgres.session_closed" }
    public var disposition: Disposition { .fatal }
    public var description: String { "\(code): the Postgres session was closed" }
}

/// The session's thread and its queue of work.
final class SessionWorker: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [(PostgresConnection?) -> Void] = []
    private var stopped = false

    func start(conninfo: String, logger: Logger) throws -> Int32 {
        nonisolated(unsafe) var outcome: Result<Int32, any Error>?
        let thread = Thread { [self] in
            let connection: PostgresConnection
            do {
                connection = try PostgresConnection(conninfo: conninfo, logger: logger)
            } catch {
                condition.withLock {
                    outcome = .failure(error)
                    condition.broadcast()
                }
                return
            }
            condition.withLock {
                outcome = .success(connection.backendPID)
                condition.broadcast()
            }
            while let job = next() { job(connection) }
            // Work queued after the end is refused rather than left waiting forever.
            for job in condition.withLock({ () -> [(PostgresConnection?) -> Void] in defer { jobs = [] }; return jobs }) { job(nil) }
        }
        thread.name = "leadflow.postgres"
        thread.start()
        return try condition.withLock {
            while outcome == nil { condition.wait() }
            return try outcome!.get()
        }
    }

    /// The next job; nil once stopped with nothing left.
    private func next() -> ((PostgresConnection?) -> Void)? {
        condition.withLock {
            while jobs.isEmpty && !stopped { condition.wait() }
            return jobs.isEmpty ? nil : jobs.removeFirst()
        }
    }

    func enqueue(_ job: @escaping (PostgresConnection?) -> Void) {
        let refused = condition.withLock { () -> Bool in
            guard !stopped else { return true }
            jobs.append(job)
            condition.signal()
            return false
        }
        if refused { job(nil) }
    }

    func stop() {
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }
}

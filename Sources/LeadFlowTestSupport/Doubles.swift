import Foundation
import LeadFlowCore
import Logging

/// Records the waits asked for and returns at once (backoff tests need no real time).
public final class RecordingSleeper: Sleeper, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Duration] = []

    public init() {}

    public var waits: [Duration] { lock.withLock { recorded } }

    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        lock.withLock { recorded.append(duration) }
    }
}

/// Captures log lines in memory so tests can assert on them, secrets included.
public final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var captured: [String] = []

    public init() {}

    public var lines: [String] { lock.withLock { captured } }

    /// A logger at `trace` that writes here: message and every metadata value.
    public func logger(_ label: String = "test") -> Logger {
        Logger(label: label) { _ in Handler(capture: self) }
    }

    fileprivate func append(_ line: String) { lock.withLock { captured.append(line) } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            capture.append("\(event.level) \(event.message) \(rendered)")
        }
    }
}

/// The app's usage as another worker left it (Postgres's board has its own test).
public final class InMemoryUsageBoard: UsageBoard, @unchecked Sendable {
    private let lock = NSLock()
    private var usage: GraphUsage?
    private var published: [GraphUsage] = []

    public init(_ usage: GraphUsage? = nil) { self.usage = usage }

    public var publishedUsages: [GraphUsage] { lock.withLock { published } }
    public func publish(_ usage: GraphUsage) throws { lock.withLock { published.append(usage) } }
    public func latest() throws -> GraphUsage? { lock.withLock { usage } }
}

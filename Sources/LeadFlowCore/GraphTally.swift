import Foundation
import Synchronization

/// What was asked of Graph and what it answered badly, counted as the requests are made:
/// requests sent, errors by code (retried ones too), rate-limit waits and their length.
///
/// The Graph client records into every tally in `GraphTally.active`, a task-local list, so
/// a connection's pass and each of its forms count their own requests while one client
/// serves every lane of the run.
public final class GraphTally: Sendable {
    public struct Counts: Sendable, Equatable {
        public var requests = 0
        /// Error code (`graph.190.463`, `http.timeout`, …) → how many times it came.
        public var errors: [String: Int] = [:]
        public var rateLimitWaits = 0
        public var rateLimitWaitSeconds = 0.0

        public init(requests: Int = 0, errors: [String: Int] = [:], rateLimitWaits: Int = 0, rateLimitWaitSeconds: Double = 0) {
            self.requests = requests
            self.errors = errors
            self.rateLimitWaits = rateLimitWaits
            self.rateLimitWaitSeconds = rateLimitWaitSeconds
        }

        public var errorCount: Int { errors.values.reduce(0, +) }

        public static func + (a: Counts, b: Counts) -> Counts {
            Counts(requests: a.requests + b.requests, errors: a.errors.merging(b.errors, uniquingKeysWith: +),
                   rateLimitWaits: a.rateLimitWaits + b.rateLimitWaits,
                   rateLimitWaitSeconds: a.rateLimitWaitSeconds + b.rateLimitWaitSeconds)
        }
    }

    private let state = Mutex(Counts())

    public init() {}

    /// The tallies the current task records into (innermost last).
    @TaskLocal public static var active: [GraphTally] = []

    public var counts: Counts { state.withLock { $0 } }

    /// Runs `body` with this tally added to the active ones.
    public func recording<T>(_ body: () async throws -> T) async rethrows -> T {
        try await GraphTally.$active.withValue(GraphTally.active + [self]) { try await body() }
    }

    public static func request() { each { $0.requests += 1 } }
    public static func error(_ code: String) { each { $0.errors[code, default: 0] += 1 } }
    public static func rateLimitWait(_ wait: Duration) {
        let seconds = Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18
        each {
            $0.rateLimitWaits += 1
            $0.rateLimitWaitSeconds += seconds
        }
    }

    private static func each(_ change: (inout Counts) -> Void) {
        for tally in active { tally.state.withLock { change(&$0) } }
    }
}

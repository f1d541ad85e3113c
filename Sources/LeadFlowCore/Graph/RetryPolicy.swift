import Synchronization

/// Exponential backoff with full jitter and a bound on attempts: how long to wait before
/// attempt `n` (1-based) of a request that failed with a retryable error.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// The longest all rate-limit waits of one client (one run) may take together.
    public var maxRateLimitWait: Duration

    public init(maxAttempts: Int = 6, baseDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(30),
                maxRateLimitWait: Duration = .seconds(15 * 60)) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRateLimitWait = maxRateLimitWait
    }

    /// The delay before retrying after `failedAttempts` failures, with `unit` in [0, 1)
    /// drawn by the caller (injected so tests are deterministic).
    public func delay(afterFailedAttempts failedAttempts: Int, unit: Double) -> Duration {
        let exponent = min(max(failedAttempts - 1, 0), 20)
        let ceiling = min(baseDelay * (1 << exponent), maxDelay)
        return ceiling * max(0, min(unit, 1))
    }
}

/// The rate-limit waits one run may still spend (`graph.max_rate_limit_wait_seconds`),
/// shared by every request of its Graph client: each wait Graph asks for, whether its own
/// estimate or a backoff, is taken from it, and one that does not fit is not waited.
/// So a throttled app or Page costs a run a bounded time, whatever Graph says.
public final class RateLimitBudget: Sendable {
    public let limit: Duration
    /// What was waited, and whether a wait was refused (then the run waits no more).
    private let state = Mutex((spent: Duration.zero, refused: false))

    public init(limit: Duration) { self.limit = limit }

    /// Takes `wait` from the budget; false, taking nothing, when it would pass the limit.
    /// - Parameter appWide: the limit is the app's (no Page named): once such a wait is
    ///   refused, the run waits no more and later connections are skipped. A Page's own
    ///   limit that does not fit fails that Page's reads only; other Pages go on.
    public func take(_ wait: Duration, appWide: Bool = true) -> Bool {
        state.withLock { state in
            guard !state.refused, state.spent + wait <= limit else {
                if appWide { state.refused = true }
                return false
            }
            state.spent += wait
            return true
        }
    }

    /// An app-wide wait was refused: every later connection would meet the same limit, so
    /// they are skipped rather than waited for.
    public var isSpent: Bool { state.withLock { $0.refused } }
}

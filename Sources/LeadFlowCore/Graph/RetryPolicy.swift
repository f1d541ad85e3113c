/// Exponential backoff with full jitter and a bound on attempts: how long to wait before
/// attempt `n` (1-based) of a request that failed with a retryable error.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// The longest a rate-limit answer may make us wait before the stream gives up.
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

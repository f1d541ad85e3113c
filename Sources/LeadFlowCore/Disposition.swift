/// What the pipeline does with a failure: the one question every layer's error answers.
public enum Disposition: String, Sendable, Equatable {
    /// Transient (a timeout, a 5xx, a rate limit, a dropped connection): try again, bounded.
    case retry
    /// The token or a permission is gone: the connection goes void, no further requests.
    case void
    /// One bad record: reject it with a reason and go on.
    case skip
    /// Configuration or programming error: stop.
    case fatal
}

/// The shape every LeadFlow error takes (one conforming type per layer).
///
/// `description` is safe to show and log: no token, e-mail, phone or name.
/// Detail that may hold personal data belongs in `debugDescription` only.
public protocol LeadFlowError: Error, CustomStringConvertible, CustomDebugStringConvertible {
    /// A stable, greppable code such as `http.timeout` or `postgres.connection_lost`.
    var code: String { get }
    var disposition: Disposition { get }
}

extension LeadFlowError {
    public var debugDescription: String { description }
}

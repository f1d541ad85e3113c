import Foundation

/// The Integrate rule for a connection's authentication: good for `validity` (90 days)
/// from the last (re)authentication, with a reminder `reminderLead` (15 days) before the
/// end, at day 75. Facebook's own `expires_at` and `data_access_expires_at`, when earlier,
/// win: the end moves, and the reminder with it.
public struct TokenPolicy: Sendable, Equatable {
    public var validity: Duration
    /// How long before the end the reminder is due.
    public var reminderLead: Duration

    public static let day: Duration = .seconds(86_400)

    public init(validityDays: Int = 90, reminderDay: Int = 75) {
        validity = TokenPolicy.day * validityDays
        reminderLead = TokenPolicy.day * (validityDays - reminderDay)
    }

    public enum Status: Sendable, Equatable {
        case healthy
        /// From the reminder instant until the end.
        case reminderDue
        /// At or after the end.
        case expired(cause: VoidCause)
    }

    /// What decides a connection's cycle.
    public struct Evaluation: Sendable, Equatable {
        public let status: Status
        /// When the authentication stops working, and why.
        public let expiresAt: Date
        public let expiryCause: VoidCause
        public let reminderAt: Date
    }

    /// - Parameters:
    ///   - facebookExpiresAt: nil when Facebook says 0 ("never").
    ///   - facebookDataAccessExpiresAt: nil when Facebook says 0.
    public func evaluate(authenticatedAt: Date, facebookExpiresAt: Date?, facebookDataAccessExpiresAt: Date?,
                         now: Date) -> Evaluation {
        var expiresAt = authenticatedAt.addingTimeInterval(validity.timeInterval)
        var cause = VoidCause.tokenExpired
        if let facebook = facebookExpiresAt, facebook < expiresAt {
            expiresAt = facebook
        }
        if let dataAccess = facebookDataAccessExpiresAt, dataAccess < expiresAt {
            expiresAt = dataAccess
            cause = .dataAccessExpired
        }
        let reminderAt = expiresAt.addingTimeInterval(-reminderLead.timeInterval)
        let status: Status
        if now >= expiresAt {
            status = .expired(cause: cause)
        } else if now >= reminderAt {
            status = .reminderDue
        } else {
            status = .healthy
        }
        return Evaluation(status: status, expiresAt: expiresAt, expiryCause: cause, reminderAt: reminderAt)
    }
}

extension Duration {
    /// Seconds as a `TimeInterval`, for `Date` arithmetic.
    public var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// Whole milliseconds, rounded down (curl's timeouts, Postgres intervals and settings);
    /// saturated at `Int`'s bounds rather than trapping on a duration nobody meant.
    public var milliseconds: Int {
        let (whole, overflow) = Int(truncatingIfNeeded: components.seconds).multipliedReportingOverflow(by: 1000)
        guard !overflow, components.seconds == Int64(whole / 1000) else { return components.seconds < 0 ? .min : .max }
        let (sum, carried) = whole.addingReportingOverflow(Int(components.attoseconds / 1_000_000_000_000_000))
        return carried ? (components.seconds < 0 ? .min : .max) : sum
    }
}

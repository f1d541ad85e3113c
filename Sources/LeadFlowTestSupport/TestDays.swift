import Foundation
import LeadFlowCore

/// A story's calendar: instants named by days (fractions allowed) after its day 0, so a
/// test reads `day(30.5)` instead of seconds arithmetic.
public struct TestDays: Sendable {
    public let zero: Date

    /// `zero` is an ISO 8601 instant; a typo there is the test's own bug, so it traps.
    public init(zero: String) {
        guard let parsed = UTCTime.parse(zero) else { preconditionFailure("not an ISO 8601 instant: \(zero)") }
        self.zero = parsed
    }

    public func callAsFunction(_ n: Double) -> Date { zero.addingTimeInterval(n * 86_400) }
}

import Foundation

/// Facebook's counters of a form against what an Integrate instance holds of it: the net
/// under the scheduled window. The window starts at the newest `created_time` seen (minus
/// an overlap), so a lead Graph indexes hours after it was created falls behind it and no
/// scheduled read ever returns it; the form's `leads_count` does count it (issue 18
/// measured 20 of 96 late leads lost). When the counts disagree, deeper windows are read
/// again until they agree or Facebook's retention is reached.
public struct FormTally: Sendable, Equatable {
    public let formID: String
    /// `leads_count − expired_leads_count`: the leads Facebook says it holds and still returns
    /// (or will, once indexed).
    public let facebook: Int
    /// Lead ids of the form the instance has: loaded, rejected (and not loaded since), or
    /// withheld (an erased person's). A held lead Facebook has since expired still counts
    /// here, so the comparison can understate what is missing, never overstate it.
    public let held: Int

    public init(formID: String, facebook: Int, held: Int) {
        self.formID = formID
        self.facebook = facebook
        self.held = held
    }

    public var missing: Int { max(0, facebook - held) }
}

/// What the last reconciliation of an instance's form found and did.
public struct FormReconciliation: Sendable, Equatable {
    public var formID: String
    public var checkedAt: Date
    /// `FormTally.facebook` when checked: a form whose count has not moved and that missed
    /// nothing is not counted again.
    public var facebook: Int
    public var held: Int
    /// Since when the counts have disagreed (nil: they agree).
    public var shortSince: Date?
    /// The last time deeper windows were read again, and the last time back to the retention.
    public var rereadAt: Date?
    public var deepestRereadAt: Date?

    public init(formID: String, checkedAt: Date, facebook: Int, held: Int, shortSince: Date? = nil, rereadAt: Date? = nil,
                deepestRereadAt: Date? = nil) {
        self.formID = formID
        self.checkedAt = checkedAt
        self.facebook = facebook
        self.held = held
        self.shortSince = shortSince
        self.rereadAt = rereadAt
        self.deepestRereadAt = deepestRereadAt
    }

    public var missing: Int { max(0, facebook - held) }
}

/// When and how deep a form with missing leads is read again.
public struct ReconciliationPolicy: Sendable, Equatable {
    /// At most one re-read of a form per this many seconds (issue 18: once an hour)…
    public var rereadEvery: TimeInterval = 3_600
    /// …while the shortfall is younger than this; then once a day (`deepestEvery`). Graph's
    /// late indexing is hours, not days: a form that stays short for two days holds leads
    /// Facebook counts but does not return, and re-reading it hourly (a big form's 48 hours,
    /// archived again each time) would cost without end.
    public var hourlyFor: TimeInterval = 48 * 3_600
    /// The windows read again, newest first, each reaching this far behind the run: the
    /// first ones cover the indexing delays seen (hours); the last reaches Facebook's retention.
    public var depths: [TimeInterval] = [6 * 3_600, 48 * 3_600, ReconciliationPolicy.retention]
    /// The deepest window (the whole retention) is read again at most this often: a form
    /// whose count never agrees (leads older than the pipeline's `window.start`, leads
    /// Facebook counts but never returns) costs a day's worth of reads, not an hour's.
    public var deepestEvery: TimeInterval = 86_400
    /// How long Facebook returns a lead: 90 days (`GRAPH_API.md`, Meta's Lead Ads retrieval guide).
    public static let retention: TimeInterval = 90 * 86_400

    public init() {}

    /// Whether the form's counts call for reading it again now.
    public func isDue(_ tally: FormTally, last: FormReconciliation?, now: Date) -> Bool {
        guard tally.missing > 0 else { return false }
        guard let rereadAt = last?.rereadAt else { return true }
        let shortSince = last?.shortSince ?? now
        let every = now.timeIntervalSince(shortSince) < hourlyFor ? rereadEvery : deepestEvery
        return now.timeIntervalSince(rereadAt) >= every
    }

    /// The windows to read again, newest first: from where the scheduled window began back
    /// to each depth, each one's end the next one's start, none before `floor` (the
    /// pipeline's `window.start`) or beyond the retention.
    public func slices(scheduledFrom: Date, now: Date, floor: Date?, last: FormReconciliation?) -> [LeadWindow] {
        let oldest = max(floor ?? .distantPast, now.addingTimeInterval(-Self.retention))
        let deepestDue = last?.deepestRereadAt.map { now.timeIntervalSince($0) >= deepestEvery } ?? true
        var slices: [LeadWindow] = []
        var end = scheduledFrom
        for (index, depth) in depths.enumerated() {
            if index == depths.count - 1, !deepestDue, depths.count > 1 { break }
            let start = max(oldest, now.addingTimeInterval(-depth))
            if start < end {
                slices.append(LeadWindow(from: start, to: end))
                end = start
            }
        }
        return slices
    }

    /// Whether these slices reach the deepest depth (recorded, to pace the next one).
    public func reachesDeepest(_ slices: [LeadWindow], now: Date, floor: Date?) -> Bool {
        guard let last = slices.last?.from, let deepest = depths.last else { return false }
        return last <= max(floor ?? .distantPast, now.addingTimeInterval(-deepest))
    }
}

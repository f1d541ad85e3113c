import Foundation

/// The gap report: per connection and void period, what was late, recovered, missing or
/// lost. Built in the pure core from rows the store reads (`GapFacts`); every figure is
/// derived here or counted in SQL, never typed in.
public struct GapReport: Sendable, Equatable {
    public let generatedAt: Date
    /// The periods shown overlap `[from, to)`; nil: unbounded.
    public let from: Date?
    public let to: Date?
    public let connections: [Connection]
    public let instances: [InstanceTotals]
    /// The token policy the cycles were judged by (the timeline draws its reminder windows).
    public let policy: TokenPolicy

    public struct Connection: Sendable, Equatable {
        public let instance: String
        public let label: String
        public let pageID: String
        public let pageName: String?
        /// `healthy`, `reminder_due` or `void`.
        public let status: String
        public let authenticatedAt: Date
        public let daysSinceAuthentication: Int
        public let reminderAt: Date
        public let expiresAt: Date
        /// `not_due`, `due` (in the reminder window) or `overdue` (past expiry, or void).
        public let reminder: String
        public let lastHealthyRunAt: Date?
        public let leadsLoaded: Int
        /// What Facebook's form counters say it still returns beyond what Integrate holds
        /// (loaded or rejected), at the last healthy run; nil before any.
        public let missing: Int?
        public let periods: [Period]
        public let rejected: [String: Int]
        /// For the timeline: the starts of the authentication cycles, and leads loaded per UTC day.
        public let cycleStarts: [Date]
        public let dailyLeads: [Date: Int]
    }

    public struct Period: Sendable, Equatable {
        public let id: Int64
        public let cause: VoidCause
        public let startedAt: Date
        public let endedAt: Date?
        public let durationSeconds: TimeInterval
        /// Leads created inside the period and now loaded (by backfill or a late run).
        public let recovered: Int
        /// The connection's missing leads, when the evidence points at this period; nil when it does not.
        public let missing: Int?
        /// True when several periods could hold the missing leads (or the period is still
        /// open and Facebook's counters cannot be read): the figure is attributed, not proven.
        public let missingIsEstimate: Bool
        /// The rise of `expired_leads_count` from the period's start until its backfill.
        public let lost: Int
        public let status: Status
        public let backfilledAt: Date?
    }

    public enum Status: String, Sendable, Equatable {
        case open
        case awaitingBackfill = "awaiting_backfill"
        case recovered
        case partlyLost = "partly_lost"
    }

    public struct InstanceTotals: Sendable, Equatable {
        public let instance: String
        public let connections: Int
        public let voidPeriods: Int
        public let open: Int
        public let recovered: Int
        public let missing: Int
        public let lost: Int
        public let rejected: Int
    }
}

/// One connection's rows, as the store reads them.
public struct GapFacts: Sendable, Equatable {
    public struct PeriodFacts: Sendable, Equatable {
        public let id: Int64
        public let cause: VoidCause
        public let startedAt: Date
        public let endedAt: Date?
        public let backfilledAt: Date?
        public let recovered: Int
        public let lost: Int
        /// The last healthy run before the period: nothing was loaded after it.
        public let lastRunBefore: Date?
        /// Leads a day in the four weeks before that run: the rate that estimates what an
        /// open period holds, while Facebook's counters cannot be read.
        public let leadsPerDayBefore: Double

        public init(id: Int64, cause: VoidCause, startedAt: Date, endedAt: Date?, backfilledAt: Date?, recovered: Int, lost: Int,
                    lastRunBefore: Date? = nil, leadsPerDayBefore: Double = 0) {
            self.id = id
            self.cause = cause
            self.startedAt = startedAt
            self.endedAt = endedAt
            self.backfilledAt = backfilledAt
            self.recovered = recovered
            self.lost = lost
            self.lastRunBefore = lastRunBefore
            self.leadsPerDayBefore = leadsPerDayBefore
        }
    }

    public var instance: String
    public var label: String
    public var pageID: String
    public var pageName: String?
    public var authenticatedAt: Date
    public var facebookExpiresAt: Date?
    public var facebookDataAccessExpiresAt: Date?
    public var cycleStarts: [Date] = []
    public var periods: [PeriodFacts] = []
    public var leadsLoaded = 0
    /// Lead ids rejected and never loaded: Integrate holds them, as rejections.
    public var leadsRejectedOnly = 0
    /// Σ over forms of the last snapshot's `leads_count − expired_leads_count`; nil before any snapshot.
    public var facebookReturnable: Int?
    public var rejected: [String: Int] = [:]
    public var lastHealthyRunAt: Date?
    public var dailyLeads: [Date: Int] = [:]

    public init(instance: String, label: String, pageID: String, pageName: String?, authenticatedAt: Date,
                facebookExpiresAt: Date?, facebookDataAccessExpiresAt: Date?) {
        self.instance = instance
        self.label = label
        self.pageID = pageID
        self.pageName = pageName
        self.authenticatedAt = authenticatedAt
        self.facebookExpiresAt = facebookExpiresAt
        self.facebookDataAccessExpiresAt = facebookDataAccessExpiresAt
    }
}

extension GapReport {
    public static func build(_ facts: [GapFacts], policy: TokenPolicy, now: Date, from: Date? = nil, to: Date? = nil) -> GapReport {
        let connections = facts.map { connection(of: $0, policy: policy, now: now, from: from, to: to) }
        let instances = Dictionary(grouping: connections, by: \.instance).keys.sorted().map { instance -> InstanceTotals in
            let members = connections.filter { $0.instance == instance }
            let periods = members.flatMap(\.periods)
            return InstanceTotals(instance: instance, connections: members.count, voidPeriods: periods.count,
                                  open: periods.filter { $0.status == .open }.count,
                                  recovered: periods.reduce(0) { $0 + $1.recovered },
                                  missing: members.reduce(0) { $0 + ($1.missing ?? 0) },
                                  lost: periods.reduce(0) { $0 + $1.lost },
                                  rejected: members.reduce(0) { $0 + $1.rejected.values.reduce(0, +) })
        }
        return GapReport(generatedAt: now, from: from, to: to, connections: connections, instances: instances, policy: policy)
    }

    static func connection(of facts: GapFacts, policy: TokenPolicy, now: Date, from: Date?, to: Date?) -> Connection {
        let evaluation = policy.evaluate(authenticatedAt: facts.authenticatedAt, facebookExpiresAt: facts.facebookExpiresAt,
                                         facebookDataAccessExpiresAt: facts.facebookDataAccessExpiresAt, now: now)
        let isVoid = facts.periods.contains { $0.endedAt == nil }
        let status: String
        let reminder: String
        switch (isVoid, evaluation.status) {
        case (true, _), (_, .expired): status = "void"; reminder = "overdue"
        case (false, .reminderDue): status = "reminder_due"; reminder = "due"
        case (false, .healthy): status = "healthy"; reminder = "not_due"
        }
        let counted = facts.facebookReturnable.map { max(0, $0 - facts.leadsLoaded - facts.leadsRejectedOnly) }

        // The missing leads can only be in periods not yet recovered; with one such period
        // the evidence points at it, with several it goes to the latest, as an estimate.
        // An open period cannot be counted (no token, no counters): the Page's lead rate
        // before it, times the time since the last healthy run, estimates what waits in Facebook.
        let unrecovered = facts.periods.filter { $0.backfilledAt == nil }
        let attributedTo = unrecovered.last?.id
        var missing = counted
        if let open = unrecovered.last, open.endedAt == nil {
            let days = now.timeIntervalSince(open.lastRunBefore ?? open.startedAt) / 86_400
            let estimate = Int((open.leadsPerDayBefore * days).rounded())
            missing = max(counted ?? 0, estimate)
        }
        let periods = facts.periods.filter { period in
            (to.map { period.startedAt < $0 } ?? true) && (from.map { (period.endedAt ?? now) > $0 } ?? true)
        }.map { period -> Period in
            let periodStatus: Status
            if period.endedAt == nil { periodStatus = .open }
            else if period.backfilledAt == nil { periodStatus = .awaitingBackfill }
            else { periodStatus = period.lost > 0 ? .partlyLost : .recovered }
            let attributed = period.id == attributedTo
            return Period(id: period.id, cause: period.cause, startedAt: period.startedAt, endedAt: period.endedAt,
                          durationSeconds: (period.endedAt ?? now).timeIntervalSince(period.startedAt),
                          recovered: period.recovered, missing: attributed ? missing : (period.backfilledAt != nil ? 0 : nil),
                          missingIsEstimate: attributed && (unrecovered.count > 1 || period.endedAt == nil),
                          lost: period.lost, status: periodStatus, backfilledAt: period.backfilledAt)
        }
        let days = Int(now.timeIntervalSince(facts.authenticatedAt) / 86_400)
        return Connection(instance: facts.instance, label: facts.label, pageID: facts.pageID, pageName: facts.pageName,
                          status: status, authenticatedAt: facts.authenticatedAt, daysSinceAuthentication: days,
                          reminderAt: evaluation.reminderAt, expiresAt: evaluation.expiresAt, reminder: reminder,
                          lastHealthyRunAt: facts.lastHealthyRunAt, leadsLoaded: facts.leadsLoaded, missing: missing,
                          periods: periods, rejected: facts.rejected, cycleStarts: facts.cycleStarts, dailyLeads: facts.dailyLeads)
    }
}

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
    /// How people's dates are written (`--tz`); CSV and JSON instants stay UTC.
    public let dates: ReportDates

    /// How long Facebook keeps a lead retrievable: a void period that began on D loses its
    /// first leads on D + 90 days, so that is the last day to recover them (`recover_by`).
    public static let leadRetention: TimeInterval = 90 * 86_400

    public struct Connection: Sendable, Equatable {
        public let instance: String
        public let label: String
        public let pageID: String
        public let pageName: String?
        /// The Connector Authenticator of the last (re)authentication, as `connect` stored them.
        public let authenticatorID: String?
        public let authenticatorName: String?
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
        /// Counted by Facebook outside any void period, not returned by Graph yet (`GapFacts.late`).
        public var late = 0
        /// What Facebook's form counters say it still returns beyond what Integrate holds
        /// (loaded or rejected), at the last healthy run; nil before any.
        public let missing: Int?
        /// Of `missing`, what Facebook still keeps: the open period's estimate without its
        /// days past the 90-day retention. nil when unknown.
        public let waiting: Int?
        /// The earliest `recoverBy` of the periods not yet recovered; nil when none.
        public let recoverBy: Date?
        /// Who must act, by when, in one sentence; nil when nobody needs to. Set once the
        /// rest of the connection is known: the sentence is made of it.
        public internal(set) var attention: Attention?
        public let periods: [Period]
        public let rejected: [String: Int]
        /// For the timeline: the starts of the authentication cycles, and per day (local
        /// midnight in the report's zone) the leads loaded, waiting and lost.
        public let cycleStarts: [Date]
        public let days: [Date: DayCounts]

        /// The Page's name when known, else its id: what people read.
        public var pageTitle: String { pageName ?? "Page \(pageID)" }
        /// The authenticator's name when known, else the Facebook user id.
        public var authenticatorTitle: String {
            authenticatorName ?? authenticatorID.map { "Facebook user \($0)" } ?? "the Connector Authenticator"
        }
    }

    /// One day of a connection's timeline. Loaded leads are counted per day in SQL; waiting
    /// and lost ones are known from Facebook's form counters only per form and period, so a
    /// period's figures are spread over its days where the loaded leads fall short of the
    /// Page's usual rate (evenly while it is void): fractions, drawn, never printed as counts.
    public struct DayCounts: Sendable, Equatable {
        public var loaded = 0
        public var waiting = 0.0
        public var lost = 0.0

        public init(loaded: Int = 0, waiting: Double = 0, lost: Double = 0) {
            self.loaded = loaded
            self.waiting = waiting
            self.lost = lost
        }
    }

    /// What a connection needs from someone, and until when it can wait.
    public struct Attention: Sendable, Equatable {
        public enum Kind: String, Sendable, Equatable {
            /// Healthy, but its authentication ends soon (from day 75).
            case reminderDue = "reminder_due"
            /// Void; its leads wait in Facebook, none lost yet.
            case void
            /// Void for longer than Facebook keeps leads: the oldest are gone, more each day.
            case partlyLost = "partly_lost"
            /// Reauthenticated, but the void period's leads are not loaded yet.
            case awaitingBackfill = "awaiting_backfill"
            /// Never loaded and past Facebook's retention: nobody can bring them back.
            case lost
        }

        public let kind: Kind
        /// When it is too late; nil when it already is (`lost`).
        public let actBy: Date?
        public let sentence: String
    }

    public struct Period: Sendable, Equatable {
        public let id: Int64
        /// 1, 2, … in the order of the connection's own periods (ids are global).
        public let number: Int
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
        /// Of `missing`, what Facebook still keeps (nil when `missing` is). An open period's
        /// estimate covers days past the retention too; those are `lostEstimate`.
        public let waiting: Int?
        /// An open period's estimated leads created more than 90 days ago: Facebook no longer
        /// returns them, and its counters cannot be read to say so.
        public let lostEstimate: Int
        public let status: Status
        public let backfilledAt: Date?
        /// Start + Facebook's retention, while the period's leads are not loaded (open or
        /// awaiting backfill): the day its first leads are lost. nil once backfilled.
        public let recoverBy: Date?
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
        /// Leads Facebook still keeps that Integrate lacks, over the instance's connections.
        public let waiting: Int
        /// The earliest deadline of the instance's connections; nil when none has one.
        public let actBy: Date?
        /// One sentence per connection that needs someone, most urgent first; "all
        /// connections healthy." otherwise.
        public let summary: String
        /// "globex: No leads from …": the summary, named.
        public var headline: String { instance + ": " + summary }
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
    public var authenticatorID: String?
    public var authenticatorName: String?
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
    /// Leads Facebook's counters hold that no void period explains and Graph has not
    /// returned (the last reconciliation's finding: indexed late, or never).
    public var late = 0
    public var rejected: [String: Int] = [:]
    public var lastHealthyRunAt: Date?
    /// Leads loaded per day, keyed by the day's local midnight in the report's zone.
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
    /// - Parameter timeZone: the zone people's dates are written in, and the days of the
    ///   timeline; the facts' `dailyLeads` must be counted in the same zone.
    public static func build(_ facts: [GapFacts], policy: TokenPolicy, now: Date, from: Date? = nil, to: Date? = nil,
                             timeZone: TimeZone = TimeZone(secondsFromGMT: 0)!) -> GapReport {
        let dates = ReportDates(timeZone: timeZone, reference: now)
        let connections = facts.map { connection(of: $0, policy: policy, now: now, from: from, to: to, dates: dates) }
        let instances = Dictionary(grouping: connections, by: \.instance).keys.sorted().map { instance -> InstanceTotals in
            let members = connections.filter { $0.instance == instance }
            let periods = members.flatMap(\.periods)
            // Most urgent first: the earliest deadline; what nobody can change any more, last.
            let needs = members.compactMap(\.attention).sorted {
                ($0.actBy ?? .distantFuture, $0.sentence) < ($1.actBy ?? .distantFuture, $1.sentence)
            }
            let summary = needs.isEmpty ? "all connections healthy." : needs.map(\.sentence).joined(separator: " ")
            return InstanceTotals(instance: instance, connections: members.count, voidPeriods: periods.count,
                                  open: periods.filter { $0.status == .open }.count,
                                  recovered: periods.reduce(0) { $0 + $1.recovered },
                                  missing: members.reduce(0) { $0 + ($1.missing ?? 0) },
                                  lost: periods.reduce(0) { $0 + $1.lost },
                                  rejected: members.reduce(0) { $0 + $1.rejected.values.reduce(0, +) },
                                  waiting: members.reduce(0) { $0 + ($1.waiting ?? 0) },
                                  actBy: needs.compactMap(\.actBy).min(), summary: summary)
        }
        return GapReport(generatedAt: now, from: from, to: to, connections: connections, instances: instances, policy: policy,
                         dates: dates)
    }

    static func connection(of facts: GapFacts, policy: TokenPolicy, now: Date, from: Date?, to: Date?, dates: ReportDates) -> Connection {
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
        // Of an open period's estimate, the days older than Facebook keeps leads are lost:
        // the counters that would say so cannot be read without a token.
        var lostEstimate = 0
        if let open = unrecovered.last, open.endedAt == nil {
            let since = open.lastRunBefore ?? open.startedAt
            let days = now.timeIntervalSince(since) / 86_400
            let estimate = Int((open.leadsPerDayBefore * days).rounded())
            missing = max(counted ?? 0, estimate)
            let pastRetention = now.addingTimeInterval(-leadRetention).timeIntervalSince(since) / 86_400
            lostEstimate = min(missing ?? 0, max(0, Int((open.leadsPerDayBefore * pastRetention).rounded())))
        }
        let waiting = missing.map { $0 - lostEstimate }
        let numbers = Dictionary(uniqueKeysWithValues: facts.periods.sorted { $0.startedAt < $1.startedAt }.enumerated().map { ($1.id, $0 + 1) })
        let periods = facts.periods.filter { period in
            (to.map { period.startedAt < $0 } ?? true) && (from.map { (period.endedAt ?? now) > $0 } ?? true)
        }.map { period -> Period in
            let periodStatus: Status
            if period.endedAt == nil { periodStatus = .open }
            else if period.backfilledAt == nil { periodStatus = .awaitingBackfill }
            else { periodStatus = period.lost > 0 ? .partlyLost : .recovered }
            let attributed = period.id == attributedTo
            let periodMissing = attributed ? missing : (period.backfilledAt != nil ? 0 : nil)
            let periodLostEstimate = attributed && period.endedAt == nil ? lostEstimate : 0
            return Period(id: period.id, number: numbers[period.id] ?? 0, cause: period.cause, startedAt: period.startedAt,
                          endedAt: period.endedAt, durationSeconds: (period.endedAt ?? now).timeIntervalSince(period.startedAt),
                          recovered: period.recovered, missing: periodMissing,
                          missingIsEstimate: attributed && (unrecovered.count > 1 || period.endedAt == nil),
                          lost: period.lost, waiting: periodMissing.map { $0 - periodLostEstimate }, lostEstimate: periodLostEstimate,
                          status: periodStatus, backfilledAt: period.backfilledAt,
                          recoverBy: period.backfilledAt == nil ? period.startedAt.addingTimeInterval(leadRetention) : nil)
        }
        let days = Int(now.timeIntervalSince(facts.authenticatedAt) / 86_400)
        var connection = Connection(
            instance: facts.instance, label: facts.label, pageID: facts.pageID, pageName: facts.pageName,
            authenticatorID: facts.authenticatorID, authenticatorName: facts.authenticatorName,
            status: status, authenticatedAt: facts.authenticatedAt, daysSinceAuthentication: days,
            reminderAt: evaluation.reminderAt, expiresAt: evaluation.expiresAt, reminder: reminder,
            lastHealthyRunAt: facts.lastHealthyRunAt, leadsLoaded: facts.leadsLoaded, missing: missing, waiting: waiting,
            recoverBy: unrecovered.map { $0.startedAt.addingTimeInterval(leadRetention) }.min(), attention: nil,
            periods: periods, rejected: facts.rejected, cycleStarts: facts.cycleStarts,
            days: dailySeries(facts, periods: periods, now: now, dates: dates))
        connection.late = facts.late
        connection.attention = attention(connection, facts: facts, evaluation: evaluation, now: now, dates: dates)
        return connection
    }

    /// Per local day: the leads loaded, and each period's waiting and lost leads spread over
    /// its days in proportion to what the day lacks against the Page's rate before the period
    /// (where a day lost leads, its loaded count falls short). The span starts at the last
    /// healthy run before the period: nothing after it was loaded until the reauthentication.
    static func dailySeries(_ facts: GapFacts, periods: [Period], now: Date, dates: ReportDates) -> [Date: DayCounts] {
        var days = facts.dailyLeads.mapValues { DayCounts(loaded: $0) }
        let byID = Dictionary(uniqueKeysWithValues: facts.periods.map { ($0.id, $0) })
        let retentionCutoff = now.addingTimeInterval(-leadRetention)
        for period in periods {
            guard let source = byID[period.id] else { continue }
            let spanStart = min(source.lastRunBefore ?? period.startedAt, period.startedAt)
            let spanEnd = period.endedAt ?? now
            guard spanEnd > spanStart else { continue }
            // Each day the span touches, with the part of it inside the span and what it lacks.
            var pieces: [(day: Date, from: Date, to: Date, weight: Double)] = []
            var day = dates.startOfDay(spanStart)
            while day < spanEnd {
                let next = dates.startOfNextDay(day)
                let from = max(day, spanStart), to = min(next, spanEnd)
                let share = to.timeIntervalSince(from) / next.timeIntervalSince(day)
                let expected = source.leadsPerDayBefore * to.timeIntervalSince(from) / 86_400
                let lacking = max(0, expected - Double(facts.dailyLeads[day] ?? 0) * share)
                pieces.append((day, from, to, lacking))
                day = next
            }
            // A Page with no rate before (or no shortfall anywhere): spread evenly over time.
            if pieces.reduce(0, { $0 + $1.weight }) <= 0 {
                pieces = pieces.map { ($0.day, $0.from, $0.to, $0.to.timeIntervalSince($0.from)) }
            }
            let total = pieces.reduce(0) { $0 + $1.weight }
            let estimated = Double((period.waiting ?? 0) + period.lostEstimate)
            for piece in pieces {
                let part = piece.weight / total
                var counts = days[piece.day] ?? DayCounts()
                counts.lost += Double(period.lost) * part
                if period.lostEstimate > 0 {
                    // The open period's estimate: the part of the day before the cutoff is lost.
                    let old = max(0, min(piece.to, retentionCutoff).timeIntervalSince(piece.from)) / piece.to.timeIntervalSince(piece.from)
                    counts.lost += estimated * part * old
                    counts.waiting += estimated * part * (1 - old)
                } else {
                    counts.waiting += estimated * part
                }
                days[piece.day] = counts
            }
        }
        return days
    }
}

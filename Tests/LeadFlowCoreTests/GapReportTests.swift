import Foundation
import LeadFlowCore
import Testing

/// The gap report's arithmetic on rows made up here: statuses, where missing leads are
/// attributed, the estimate of an open period, totals and the formats' shapes.
@Suite struct GapReportTests {
    static let day0 = UTCTime.parse("2026-01-05T09:00:00Z")!
    static func day(_ n: Double) -> Date { day0.addingTimeInterval(n * 86_400) }

    func facts(_ label: String = "acme-main", instance: String = "acme", authenticatedAt: Double = 0,
               periods: [GapFacts.PeriodFacts] = [], loaded: Int = 100, returnable: Int? = 100) -> GapFacts {
        var facts = GapFacts(instance: instance, label: label, pageID: "1001", pageName: "Acme, \"Analytics\"",
                             authenticatedAt: Self.day(authenticatedAt), facebookExpiresAt: nil, facebookDataAccessExpiresAt: nil)
        facts.periods = periods
        facts.leadsLoaded = loaded
        facts.facebookReturnable = returnable
        facts.cycleStarts = [Self.day(authenticatedAt)]
        return facts
    }

    func period(_ id: Int64, _ start: Double, _ end: Double?, backfilled: Double? = nil, recovered: Int = 0, lost: Int = 0,
                lastRun: Double? = nil, rate: Double = 0) -> GapFacts.PeriodFacts {
        .init(id: id, cause: .tokenExpired, startedAt: Self.day(start), endedAt: end.map(Self.day), backfilledAt: backfilled.map(Self.day),
              recovered: recovered, lost: lost, lastRunBefore: lastRun.map(Self.day), leadsPerDayBefore: rate)
    }

    @Test func statusesFollowFromEndBackfillAndLoss() {
        let report = GapReport.build([facts(periods: [
            period(1, 10, 12, backfilled: 12, recovered: 5),
            period(2, 20, 22, backfilled: 22, recovered: 5, lost: 3),
            period(3, 30, 32),
        ], returnable: 100)], policy: TokenPolicy(), now: Self.day(40))
        #expect(report.connections[0].periods.map(\.status) == [.recovered, .partlyLost, .awaitingBackfill])
        let twoDays: TimeInterval = 2 * 86_400
        #expect(report.connections[0].periods.allSatisfy { $0.durationSeconds == twoDays })
    }

    @Test func missingLeadsGoToTheOnlyUnrecoveredPeriodOrAreAnEstimate() {
        let one = GapReport.build([facts(periods: [period(1, 10, 12, backfilled: 12), period(2, 20, 22)], loaded: 90, returnable: 100)],
                                  policy: TokenPolicy(), now: Self.day(30)).connections[0]
        #expect(one.missing == 10)
        #expect(one.periods.map(\.missing) == [0, 10])
        #expect(one.periods.map(\.missingIsEstimate) == [false, false])

        let two = GapReport.build([facts(periods: [period(1, 10, 12), period(2, 20, 22)], loaded: 90, returnable: 100)],
                                  policy: TokenPolicy(), now: Self.day(30)).connections[0]
        #expect(two.periods.map(\.missing) == [nil, 10])
        #expect(two.periods.map(\.missingIsEstimate) == [false, true])
    }

    @Test func anOpenPeriodIsEstimatedFromTheRateBeforeIt() {
        // 2 leads a day before; the last healthy run was 5 days ago: about 10 wait in Facebook.
        let connection = GapReport.build([facts(periods: [period(1, 31, nil, lastRun: 30, rate: 2)], returnable: 100)],
                                         policy: TokenPolicy(), now: Self.day(35)).connections[0]
        #expect(connection.status == "void")
        #expect(connection.reminder == "overdue")
        #expect(connection.periods[0].status == .open)
        #expect(connection.periods[0].missing == 10)
        #expect(connection.periods[0].missingIsEstimate)
        #expect(connection.missing == 10)
    }

    @Test func remindersFollowThePolicy() {
        let policy = TokenPolicy(validityDays: 90, reminderDay: 75)
        func reminder(at n: Double) -> String {
            GapReport.build([facts()], policy: policy, now: Self.day(n)).connections[0].reminder
        }
        #expect(reminder(at: 74) == "not_due")
        #expect(reminder(at: 76) == "due")
        #expect(reminder(at: 91) == "overdue")
        #expect(GapReport.build([facts()], policy: policy, now: Self.day(76.5)).connections[0].daysSinceAuthentication == 76)
    }

    @Test func totalsAddUpPerInstanceAndFiltersKeepOverlappingPeriods() {
        var withRejections = facts("globex-main", instance: "globex", periods: [period(7, 5, 6, backfilled: 6, recovered: 4, lost: 1)])
        withRejections.rejected = ["no_contact": 2, "invalid_email": 1]
        let report = GapReport.build([
            facts("acme-a", periods: [period(1, 10, 12, backfilled: 12, recovered: 5)]),
            facts("acme-b", periods: [period(2, 20, nil, lastRun: 20, rate: 1)]),
            withRejections,
        ], policy: TokenPolicy(), now: Self.day(30))
        #expect(report.instances.map(\.instance) == ["acme", "globex"])
        #expect(report.instances[0].voidPeriods == 2)
        #expect(report.instances[0].open == 1)
        #expect(report.instances[0].recovered == 5)
        #expect(report.instances[0].missing == 10)
        #expect(report.instances[1].lost == 1)
        #expect(report.instances[1].rejected == 3)

        let filtered = GapReport.build([facts(periods: [period(1, 10, 12), period(2, 20, 22)])], policy: TokenPolicy(), now: Self.day(30),
                                       from: Self.day(15), to: Self.day(25))
        #expect(filtered.connections[0].periods.map(\.id) == [2])
    }

    @Test func formatsKeepTheirShapes() throws {
        let report = GapReport.build([facts(periods: [period(1, 10, 12, backfilled: 12, recovered: 5)])], policy: TokenPolicy(),
                                     now: Self.day(30))
        let csv = report.render(.csv).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(csv.count == 2)
        #expect(csv[1] == "acme,acme-main,1001,1,token_expired,2026-01-15T09:00:00Z,2026-01-17T09:00:00Z,48.0,5,0,false,0,recovered,2026-01-17T09:00:00Z")
        let json = try JSONSerialization.jsonObject(with: Data(report.render(.json).utf8)) as! [String: Any]
        let connection = (json["connections"] as! [[String: Any]])[0]
        for key in ["instance", "page_id", "name", "status", "void_periods", "rejected"] { #expect(connection[key] != nil, "\(key)") }
        let period = (connection["void_periods"] as! [[String: Any]])[0]
        for key in ["cause", "started_at", "ended_at", "recovered", "missing", "lost", "status"] { #expect(period[key] != nil, "\(key)") }
        #expect(report.render(.md).contains("| 1 | token_expired | 2026-01-15T09:00:00Z | 2026-01-17T09:00:00Z | 2 d 0 h | 5 | 0 | 0 | recovered |"))
        // The Page's name is escaped in HTML.
        #expect(report.render(.html).contains("Acme, &quot;Analytics&quot;"))
    }
}

import Foundation
import LeadFlowCore
import LeadFlowTestSupport
import Testing

/// The gap report's arithmetic on rows made up here: statuses, where missing leads are
/// attributed, the estimate of an open period, totals, the headline's sentence for each
/// state a connection can be in, `recover_by`, dates in a zone, and the formats' shapes.
@Suite struct GapReportTests {
    static let day = TestDays(zero: "2026-01-05T09:00:00Z")

    func facts(_ label: String = "acme-main", instance: String = "acme", page: String? = "Acme, \"Analytics\"", pageID: String = "1001",
               authenticator: String? = "Priya Shah", authenticatedAt: Double = 0,
               periods: [GapFacts.PeriodFacts] = [], loaded: Int = 100, returnable: Int? = 100) -> GapFacts {
        var facts = GapFacts(instance: instance, label: label, pageID: pageID, pageName: page,
                             authenticatedAt: Self.day(authenticatedAt), facebookExpiresAt: nil, facebookDataAccessExpiresAt: nil)
        facts.authenticatorID = "42"
        facts.authenticatorName = authenticator
        facts.periods = periods
        facts.leadsLoaded = loaded
        facts.facebookReturnable = returnable
        facts.cycleStarts = [Self.day(authenticatedAt)]
        return facts
    }

    func period(_ id: Int64, _ start: Double, _ end: Double?, backfilled: Double? = nil, recovered: Int = 0, lost: Int = 0,
                lastRun: Double? = nil, rate: Double = 0, cause: VoidCause = .tokenExpired) -> GapFacts.PeriodFacts {
        .init(id: id, cause: cause, startedAt: Self.day(start), endedAt: end.map { Self.day($0) }, backfilledAt: backfilled.map { Self.day($0) },
              recovered: recovered, lost: lost, lastRunBefore: lastRun.map { Self.day($0) }, leadsPerDayBefore: rate)
    }

    func report(_ facts: [GapFacts], at n: Double, timeZone: TimeZone = TimeZone(secondsFromGMT: 0)!) -> GapReport {
        GapReport.build(facts, policy: TokenPolicy(), now: Self.day(n), timeZone: timeZone)
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
        #expect(one.waiting == 10)
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
        #expect(connection.periods[0].waiting == 10)
        #expect(connection.periods[0].lostEstimate == 0)
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
        #expect(report.instances[0].waiting == 10)
        #expect(report.instances[1].lost == 1)
        #expect(report.instances[1].rejected == 3)

        let filtered = GapReport.build([facts(periods: [period(1, 10, 12), period(2, 20, 22)])], policy: TokenPolicy(), now: Self.day(30),
                                       from: Self.day(15), to: Self.day(25))
        #expect(filtered.connections[0].periods.map(\.id) == [2])
        // Numbers are the connection's own, and do not change with the filter.
        #expect(filtered.connections[0].periods.map(\.number) == [2])
    }

    // MARK: - The headline, one state at a time

    @Test func aHealthyInstanceSaysSo() {
        let report = report([facts(page: "Acme Analytics"), facts("acme-events", page: "Acme Events", pageID: "1002")], at: 30)
        #expect(report.instances[0].headline == "acme: all connections healthy.")
        #expect(report.instances[0].actBy == nil)
        #expect(report.connections.allSatisfy { $0.attention == nil && $0.recoverBy == nil })
    }

    @Test func aDueReminderNamesWhoAndTheLastDay() throws {
        // Authenticated on 5 Jan: the 90 days end on 5 Apr; on day 80 the reminder is due.
        let report = report([facts(page: "Acme Analytics")], at: 80)
        let attention = try #require(report.connections[0].attention)
        #expect(attention.kind == .reminderDue)
        #expect(attention.actBy == Self.day(90))
        #expect(report.instances[0].headline
            == "acme: Priya Shah must reauthenticate Acme Analytics by 5 Apr (10 days left) to keep its leads coming.")
        #expect(report.instances[0].actBy == Self.day(90))
    }

    @Test func aVoidConnectionSaysHowManyWaitAndWhenTheFirstAreLost() throws {
        // Void since 5 Apr (the expiry); 10 leads a day before; the last healthy run half a day earlier.
        let report = report([facts(page: "Acme Analytics", periods: [period(1, 90, nil, lastRun: 89.5, rate: 10)])], at: 100)
        let connection = report.connections[0]
        #expect(connection.waiting == 105)
        #expect(connection.recoverBy == Self.day(180))
        #expect(connection.periods[0].recoverBy == Self.day(180))
        let attention = try #require(connection.attention)
        #expect(attention.kind == .void)
        #expect(attention.actBy == Self.day(180))
        #expect(report.instances[0].headline == "acme: No leads from Acme Analytics since 5 Apr (10 days). About 105 leads are waiting "
            + "in Facebook; the first are lost on 4 Jul unless Priya Shah reauthenticates Acme Analytics.")
        #expect(report.instances[0].waiting == 105)
    }

    @Test func aRevokedPermissionAsksForAnyoneWithThePermissions() throws {
        let report = report([facts(page: "Globex Software", authenticator: "Marc Dubois",
                                   periods: [period(1, 40, nil, lastRun: 39.5, rate: 10, cause: .permissionRevoked)])], at: 45)
        #expect(try #require(report.connections[0].attention).sentence.hasSuffix(
            "unless someone with Manage Pages and Leads Retrieval on Globex Software reauthenticates it (Marc Dubois no longer has them)."))
    }

    @Test func aVoidLongerThanFacebookKeepsLeadsIsPartlyLost() throws {
        // Void for 110 days: what came in before 25 Apr (day 110) is past Facebook's 90 days.
        let report = report([facts(page: "Acme Analytics", periods: [period(1, 90, nil, lastRun: 89.5, rate: 10)])], at: 200)
        let connection = report.connections[0]
        #expect(connection.missing == 1_105)
        #expect(connection.periods[0].lostEstimate == 205)
        #expect(connection.periods[0].waiting == 900)
        #expect(connection.waiting == 900)
        let attention = try #require(connection.attention)
        #expect(attention.kind == .partlyLost)
        #expect(attention.actBy == Self.day(180))
        #expect(attention.sentence == "No leads from Acme Analytics since 5 Apr (110 days). Its leads from before 25 Apr are already "
            + "lost (about 205); about 900 more are waiting in Facebook, and more are lost every day until Priya Shah reauthenticates "
            + "Acme Analytics.")
    }

    @Test func aReauthenticatedPeriodWaitsForItsBackfill() throws {
        // Reauthenticated on 12 Apr; Facebook's counters show 30 leads Integrate lacks.
        let report = report([facts(page: "Acme Analytics", authenticatedAt: 97, periods: [period(1, 90, 97, lastRun: 89.5, rate: 10)],
                                   loaded: 100, returnable: 130)], at: 98)
        let attention = try #require(report.connections[0].attention)
        #expect(attention.kind == .awaitingBackfill)
        #expect(attention.actBy == Self.day(180))
        #expect(attention.sentence == "Acme Analytics was reauthenticated on 12 Apr, but 30 leads from 5–12 Apr are not loaded yet: "
            + "the Integrate team must run `leadflow backfill --connection acme-main` before 4 Jul, when the first are lost.")
    }

    @Test func leadsPastFacebooksRetentionAreLostAndNobodyCanAct() throws {
        // Reauthenticated on day 150, never backfilled; on day 200 the period's end is 103 days old.
        let report = report([facts(page: "Acme Analytics", authenticatedAt: 150,
                                   periods: [period(1, 90, 97, lost: 40, lastRun: 89.5, rate: 10)], loaded: 100, returnable: 100)], at: 200)
        let attention = try #require(report.connections[0].attention)
        #expect(attention.kind == .lost)
        #expect(attention.actBy == nil)
        #expect(attention.sentence == "40 leads that Acme Analytics received 5–12 Apr were never loaded, and Facebook no longer keeps "
            + "them: they are lost.")
        #expect(report.instances[0].actBy == nil)
    }

    @Test func theMostUrgentConnectionComesFirst() {
        let report = report([
            facts("acme-events", page: "Acme Events", pageID: "1002", authenticatedAt: 150,
                  periods: [period(3, 90, 97, lost: 40)]),                                 // lost: nothing to do, last
            facts("acme-main", page: "Acme Analytics", periods: [period(1, 90, nil, lastRun: 89.5, rate: 10)]), // recover by day 180
            facts("acme-jobs", page: "Acme Jobs", pageID: "1003", authenticatedAt: 120),  // reminder due: ends day 210
        ], at: 200)
        let summary = report.instances[0].summary
        let order = ["Acme Analytics since", "Acme Jobs by", "Acme Events received"].compactMap { summary.range(of: $0)?.lowerBound }
        #expect(order.count == 3)
        #expect(order == order.sorted())
        #expect(report.instances[0].actBy == Self.day(180))
    }

    // MARK: - Numbers, dates and the day-by-day series

    @Test func periodsAreNumberedPerConnection() {
        let report = report([
            facts("acme-main", periods: [period(1, 10, 12, backfilled: 12), period(4, 40, 42, backfilled: 42)]),
            facts("acme-events", pageID: "1002", periods: [period(2, 20, 22, backfilled: 22), period(3, 30, 32, backfilled: 32)]),
        ], at: 50)
        #expect(report.connections.map { $0.periods.map(\.number) } == [[1, 2], [1, 2]])
        #expect(report.connections.flatMap(\.periods).allSatisfy { $0.recoverBy == nil })
    }

    @Test func datesAreWrittenInTheChosenZone() throws {
        let newYork = try #require(TimeZone(identifier: "America/New_York"))
        let dates = ReportDates(timeZone: newYork, reference: Self.day(0))
        // 09:00 UTC on 5 Jan is 04:00 in New York (EST); a day in March starts at 00:00 EDT after the change.
        #expect(dates.dayAndTime(Self.day(0)) == "5 Jan 2026 04:00")
        #expect(dates.day(Self.day(0)) == "5 Jan")
        #expect(dates.day(UTCTime.parse("2025-12-31T12:00:00Z")!) == "31 Dec 2025")
        let eighthOfMarch = dates.startOfDay(UTCTime.parse("2026-03-08T12:00:00Z")!)
        #expect(eighthOfMarch == UTCTime.parse("2026-03-08T05:00:00Z"))
        #expect(dates.startOfNextDay(eighthOfMarch) == UTCTime.parse("2026-03-09T04:00:00Z"))
        #expect(dates.range(Self.day(40), Self.day(45)) == "14–19 Feb")
        #expect(dates.range(Self.day(50), Self.day(60)) == "24 Feb–6 Mar")
        #expect(ReportDates.days(4.5 * 86_400) == "4.5 days")
        #expect(ReportDates.days(86_400) == "1 day")

        let report = report([facts(page: "Acme Analytics", periods: [period(1, 10, 12, backfilled: 12)])], at: 30, timeZone: newYork)
        #expect(report.render(.table).hasPrefix("Gap report for acme, 4 Feb 2026 04:00 America/New_York\n"))
        #expect(report.render(.md).contains("| 1 | token expired | 15 Jan 2026 04:00 | 17 Jan 2026 04:00 | 2 days |"))
        // Machines keep UTC.
        #expect(report.render(.csv).contains(",2026-01-15T09:00:00Z,"))
    }

    @Test func waitingAndLostLeadsAreSpreadOverTheDaysThatLackThem() throws {
        // 10 leads a day, every day loaded but days 20 and 21, which lost 20 between them.
        var connection = facts(page: "Acme Analytics", periods: [period(1, 19.625, 23.625, backfilled: 23.625, recovered: 20, lost: 20,
                                                                        lastRun: 19.625, rate: 10)])
        for n in 0..<30 where n != 20 && n != 21 { connection.dailyLeads[Self.day(Double(n) - 0.375)] = 10 }
        let days = report([connection], at: 30).connections[0].days
        let lost = days.mapValues(\.lost).filter { $0.value > 0.01 }
        #expect(Set(lost.keys) == [Self.day(19.625), Self.day(20.625)])
        #expect(abs(lost.values.reduce(0, +) - 20) < 0.001)

        // An open period's estimate: spread evenly, what is older than 90 days drawn as lost.
        let open = report([facts(page: "Acme Analytics", periods: [period(1, 90, nil, lastRun: 90, rate: 10)])], at: 200).connections[0]
        let waiting = open.days.values.reduce(0) { $0 + $1.waiting }, estimated = open.days.values.reduce(0) { $0 + $1.lost }
        #expect(abs(waiting - Double(open.waiting!)) < 0.5)
        #expect(abs(estimated - Double(open.periods[0].lostEstimate)) < 0.5)
        #expect(open.days.filter { $0.value.lost > 0.01 }.keys.allSatisfy { $0 < Self.day(110) })
    }

    // MARK: - Formats

    @Test func formatsKeepTheirShapes() throws {
        let report = GapReport.build([facts(periods: [period(1, 10, 12, backfilled: 12, recovered: 5)]),
                                      facts("acme-events", page: "Acme Events", pageID: "1002")],
                                     policy: TokenPolicy(), now: Self.day(30))
        let csv = report.render(.csv).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        // Every connection has a row, the healthy one without a period too; schema 1's columns come first.
        #expect(csv.count == 3)
        #expect(csv[0].hasPrefix("instance,connection,page_id,period_id,cause,started_at,ended_at,duration_hours,recovered,missing,"
            + "missing_is_estimate,lost,status,backfilled_at,"))
        #expect(csv[1].hasPrefix("acme,acme-main,1001,1,token_expired,2026-01-15T09:00:00Z,2026-01-17T09:00:00Z,48.0,5,0,false,0,recovered,"
            + "2026-01-17T09:00:00Z,\"Acme, \"\"Analytics\"\"\",42,Priya Shah,healthy,1,0,"))
        #expect(csv[2].hasPrefix("acme,acme-events,1002,,,,,,,,,,,,Acme Events,42,Priya Shah,healthy,,,"))

        let json = try JSONSerialization.jsonObject(with: Data(report.render(.json).utf8)) as! [String: Any]
        #expect(json["schema_version"] as? Int == 2)
        let instance = (json["instances"] as! [[String: Any]])[0]
        for key in ["instance", "headline", "act_by", "waiting", "connections", "void_periods", "open", "recovered", "missing", "lost", "rejected"] {
            #expect(instance[key] != nil, "\(key)")
        }
        #expect(instance["headline"] as? String == "acme: all connections healthy.")
        let connection = (json["connections"] as! [[String: Any]])[0]
        for key in ["instance", "page_id", "name", "status", "void_periods", "rejected", "page_name", "authenticator", "recover_by"] {
            #expect(connection[key] != nil, "\(key)")
        }
        #expect(connection["authenticator"] as? [String: String] == ["id": "42", "name": "Priya Shah"])
        let period = (connection["void_periods"] as! [[String: Any]])[0]
        for key in ["cause", "started_at", "ended_at", "recovered", "missing", "lost", "status", "recover_by", "number"] {
            #expect(period[key] != nil, "\(key)")
        }
        #expect(report.render(.md).contains("| 1 | token expired | 15 Jan 2026 09:00 | 17 Jan 2026 09:00 | 2 days | 5 | 0 | 0 | - | recovered |"))
        #expect(report.render(.table).contains("\nacme: all connections healthy.\n"))
        // The Page's name is escaped in HTML.
        let html = report.render(.html)
        #expect(html.contains("Acme, &quot;Analytics&quot;"))
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("href="))
    }

    @Test func theHTMLMarksWhenLeadsStartToBeLost() {
        let html = report([facts(page: "Acme Analytics", periods: [period(1, 90, nil, lastRun: 89.5, rate: 10)])], at: 100).render(.html)
        #expect(html.contains("class=\"recover-by\""))
        #expect(html.contains("#1: recover by 4 Jul"))
        #expect(html.contains("<rect class=\"waiting\""))
        #expect(html.contains("id=\"fill-waiting\"") && html.contains("id=\"fill-lost\""))
        // Every fill has its word in the legend, so the colours are never the only key.
        for word in ["loaded", "waiting in Facebook", "lost", "healthy", "reminder window", "void", "recover by", "now"] {
            #expect(html.contains(word), "\(word)")
        }
    }
}

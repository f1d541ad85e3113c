import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// `leadflow backfill` and `leadflow gaps` through the binary: a token expires, runs exit 2,
/// a reauthentication and a backfill bring the period's leads in, and every format of the
/// report says so.
@Suite(.serialized) struct BackfillAndGapsCommandTests {
    static let day = TestDays(zero: "2026-03-02T09:00:00Z")

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let leadflow: LeadFlowCLI

    init() throws {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme Analytics", forms: [
                .init(id: "2001", name: "Webinar", generate: .init(count: 400, start: "2026-03-02T09:30:00+0000", spacingSeconds: 21_600)),
            ])],
            // Facebook ends the first user's data access on day 20 (they stopped using the
            // app): the connection's end moves from day 90 to day 20.
            tokens: [.user("EAAB-gaps-user-one", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(0))),
                     .user("EAAB-gaps-user-two", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(30)))])
        scenario.tokens[0].dataAccessExpiresAt = UTCTime.iso8601(Self.day(20))
        fake = try GraphFake(scenario: scenario, now: Self.day(0))
        databaseURL = try TestDatabase.create("gapscmd")
        home = try Repository.temporaryFolder("gapscmd")
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, days: Self.day, pipeline: Repository.fixture("pipelines/no-automatic-backfill.yml"))
    }

    @Test func aVoidPeriodIsReportedThenBackfilledThenRecovered() async throws {
        #expect(try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 0,
                             input: "EAAB-gaps-user-one\n").status == 0)
        #expect(try await leadflow(["run"], day: 10).status == 0)
        // Day 25: data access ended on day 20. The run says so with exit 2.
        let voidRun = try await leadflow(["run"], day: 25)
        #expect(voidRun.status == 2, "\(voidRun.stderr)")
        #expect(voidRun.stderr.contains("void (data_access_expired)"))
        let db = try PostgresConnection(conninfo: databaseURL)
        #expect(try db.query("SELECT status FROM runs ORDER BY id DESC LIMIT 1")[0].string(0) == "partial", "a void connection makes the run partial")

        let open = try JSONSerialization.jsonObject(with: Data(try await leadflow(["gaps", "--format", "json"], day: 25).stdout.utf8)) as! [String: Any]
        let connection = (open["connections"] as! [[String: Any]])[0]
        #expect(connection["status"] as? String == "void")
        #expect(connection["reminder"] as? String == "overdue")
        let period = (connection["void_periods"] as! [[String: Any]])[0]
        #expect(period["status"] as? String == "open")
        #expect(period["started_at"] as? String == UTCTime.iso8601(Self.day(20)))
        #expect(period["recovered"] as? Int == 0)
        // Open: Facebook's counters cannot be read, so the lead rate before the last healthy run
        // (day 10) estimates what waits in Facebook; here it is exact to a lead or two.
        let waiting = fake.allVisibleLeads().filter { $0.createdAt! >= Self.day(10) && $0.createdAt! < Self.day(25) }.count
        let estimate = try #require(period["missing"] as? Int)
        #expect(abs(estimate - waiting) <= 2, "estimate \(estimate), waiting \(waiting)")
        #expect(period["missing_is_estimate"] as? Bool == true)
        // Facebook keeps the period's leads 90 days from its start: the report says until when.
        #expect(period["recover_by"] as? String == UTCTime.iso8601(Self.day(110)))
        let instance = (open["instances"] as! [[String: Any]])[0]
        #expect(instance["act_by"] as? String == UTCTime.iso8601(Self.day(110)))
        #expect((instance["headline"] as? String)?.hasPrefix("acme: No leads from Acme Analytics since 22 Mar (5 days). About ") == true)
        #expect((instance["headline"] as? String)?.contains("; the first are lost on 20 Jun unless ") == true)
        // People's dates in the zone asked for; 09:00 UTC is 18:00 in Tokyo.
        let tokyo = try await leadflow(["gaps", "--format", "md", "--tz", "Asia/Tokyo"], day: 25).stdout
        #expect(tokyo.contains("| 1 | data access expired | 22 Mar 2026 18:00 | open | 5 days | 0 | ~"), "\(tokyo)")

        // Reauthentication on day 30; automatic backfill is off in this pipeline, so the period waits.
        #expect(try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 30,
                             input: "EAAB-gaps-user-two\n").status == 0)
        let csv = try await leadflow(["gaps", "--format", "csv"], day: 30).stdout
        #expect(csv.contains(",awaiting_backfill,"))

        let backfill = try await leadflow(["backfill", "--all"], day: 30.5)
        #expect(backfill.status == 0, "\(backfill.stderr)")
        #expect(backfill.stderr.contains("backfill of void period 1"))
        let inPeriod = fake.allVisibleLeads().filter { $0.createdAt! >= Self.day(20) && $0.createdAt! < Self.day(30) }.count
        #expect(try db.query("SELECT count(*) FROM leads WHERE created_at >= $1 AND created_at < $2", [Self.day(20), Self.day(30)])[0].int(0) == inPeriod)

        let table = try await leadflow(["gaps"], day: 31)
        #expect(table.status == 0)
        #expect(table.stdout.contains("recovered"))
        #expect(table.stdout.contains("data access expired"))
        #expect(table.stdout.contains("acme: all connections healthy."))
        let markdown = try await leadflow(["gaps", "--format", "md", "--instance", "acme"], day: 31).stdout
        #expect(markdown.contains("| 1 | data access expired | 22 Mar 2026 09:00 | 1 Apr 2026 09:00 | 10 days | \(inPeriod) | 0 | 0 | - | recovered |"))
        let htmlFile = home.appendingPathComponent("report/gap-report.html")
        try FileManager.default.createDirectory(at: htmlFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        let html = try await leadflow(["gaps", "--format", "html", "--output", htmlFile.path], day: 31)
        #expect(html.status == 0, "\(html.stderr)")
        #expect(try String(contentsOf: htmlFile, encoding: .utf8).contains("<svg class=\"timeline\""))
        // Another instance's report is empty, not an error.
        #expect(try await leadflow(["gaps", "--format", "csv", "--instance", "other"], day: 31).stdout.split(separator: "\r\n").count == 1)
    }

    @Test func badArgumentsExit64() async throws {
        #expect(try await leadflow(["backfill"], day: 1).status == 64)
        #expect(try await leadflow(["backfill", "--all", "--since", "yesterday"], day: 1).status == 64)
        #expect(try await leadflow(["backfill", "--connection", "nobody"], day: 1).status == 64)
        #expect(try await leadflow(["gaps", "--format", "xml"], day: 1).status == 64)
        #expect(try await leadflow(["gaps", "--tz", "CET"], day: 1).status == 64)
    }
}

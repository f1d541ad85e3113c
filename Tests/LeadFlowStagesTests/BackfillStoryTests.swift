import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowGraph
import LeadFlowHTTP
import LeadFlowPostgres
import LeadFlowStages
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// The 200-day story, extended: leads arrive every few hours in the fake, including during
/// each void period; scheduled runs every two days; after each reauthentication the run
/// backfills the period; the gap report accounts for every lead. Real Postgres, the Graph
/// fake over libcurl, archives on disk. Day 0 is 2026-01-05T09:00:00Z.
@Suite struct BackfillStoryTests {
    static let day = TestDays(zero: "2026-01-05T09:00:00Z")
    static func iso(_ n: Double) -> String { UTCTime.iso8601(day(n)) }
    static let overlap: TimeInterval = 600

    static func scenario(expiring: Bool) -> GraphScenario {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme Analytics", forms: [
                .init(id: "2001", name: "Webinar", generate: .init(count: 1_600, start: "2026-01-05T09:30:00+0000", spacingSeconds: 10_800)),
                .init(id: "2002", name: "Demo request", generate: .init(count: 960, start: "2026-01-05T10:00:00+0000", spacingSeconds: 18_000)),
            ])],
            // Fresh short-lived user tokens, each issued on the day its user authenticates.
            tokens: [
                .user("EAAB-backfill-user-one", pages: ["1001"], issuedAt: iso(0)),
                .user("EAAB-backfill-user-two", pages: ["1001"], issuedAt: iso(100),
                      events: [.init(at: iso(130), kind: .revokePermission, permission: "leads_retrieval")]),
                .user("EAAB-backfill-user-three", pages: ["1001"], issuedAt: iso(140)),
            ])
        if expiring {
            // While the first void period lasts, Facebook stops returning part of its leads.
            scenario.leadExpiries = [.init(at: iso(96), formID: "2001", createdFrom: iso(90), createdBefore: iso(93))]
        }
        return scenario
    }

    struct World {
        let fake: GraphFake
        let db: PostgresConnection
        let connector: Connector
        let stage: RunStage
        let pipeline: Pipeline
    }

    func world(expiring: Bool = false) throws -> World {
        let db = try PostgresConnection(conninfo: try TestDatabase.create("backfill"))
        let session = try PostgresSession(conninfo: db.conninfo)
        try Migrator().migrate(db)
        let scenario = Self.scenario(expiring: expiring)
        let fake = try GraphFake(scenario: scenario, now: Self.day(0))
        let home = try Repository.temporaryFolder("backfill")
        let vault = try TokenVault.openOrCreate(keyFile: home.appendingPathComponent("token.key"))
        let graph = GraphClient(transport: try CurlHTTPClient(), configuration: .init(baseURL: fake.baseURL, appSecret: GraphScenario().appSecret), sleeper: RecordingSleeper())
        let settings = ValidationSettings(appID: scenario.appID, appSecret: scenario.appSecret)
        var pipeline = Pipeline(name: "story")
        pipeline.defaultSource = "facebook"
        let stage = RunStage(graph: graph, connections: ConnectionStore(session), leads: LeadStore(session),
                             archiver: TarArchiver(home: home, compression: .zstd), sealer: vault, erasure: ErasureKey.random(), pipeline: pipeline,
                             settings: settings,
                             spoolRoot: home.appendingPathComponent("spool"), host: "story-host")
        return World(fake: fake, db: db, connector: Connector(graph: graph, repository: ConnectionStore(session), sealer: vault, settings: settings),
                     stage: stage, pipeline: pipeline)
    }

    func connect(_ world: World, _ token: String, day n: Double) async throws {
        world.fake.now = Self.day(n)
        _ = try await world.connector.connect(.init(instance: "acme", pageID: "1001", label: "acme-main", token: AccessToken(token)),
                                              now: Self.day(n))
    }

    @discardableResult
    func run(_ world: World, day n: Double) async throws -> RunStage.Summary {
        world.fake.now = Self.day(n)
        return try await world.stage.run(now: Self.day(n))
    }

    /// Scheduled runs every two days over `[from, to)`, at half past the day.
    func runs(_ world: World, from: Double, to: Double) async throws {
        var n = from
        while n < to {
            try await run(world, day: n)
            n += 2
        }
    }

    /// The fake's lead ids created in `[from, to)`, both forms.
    func fakeLeads(_ world: World, from: Date, to: Date) -> Set<String> {
        Set(world.fake.allVisibleLeads().filter { $0.createdAt! >= from && $0.createdAt! < to }.map(\.id))
    }

    func loadedLeads(_ world: World, where condition: String = "true", _ parameters: [any PostgresEncodable] = []) throws -> Set<String> {
        Set(try world.db.query("SELECT lead_id FROM leads WHERE \(condition)", parameters).all.map { try $0.string(0)! })
    }

    func gapReport(_ world: World, at n: Double) throws -> GapReport {
        GapReport.build(try GapStore(world.db).facts(instance: nil, now: Self.day(n)), policy: world.pipeline.tokenPolicy, now: Self.day(n))
    }

    /// Plays the story to day 150.5: void at 90 (expiry), reauth at 100, void at 130.5
    /// (permission revoked, seen by the run), reauth at 140.
    func playStory(_ world: World) async throws {
        try await connect(world, "EAAB-backfill-user-one", day: 0)
        try await runs(world, from: 0.5, to: 100)
        try await connect(world, "EAAB-backfill-user-two", day: 100)

        let healing = try await run(world, day: 100.5)
        let backfillRun = try #require(healing.backfillRunID)
        #expect(healing.connections.map(\.job.description) == ["backfill of void period 1", "scheduled"])
        // The backfill loaded exactly the leads of the period widened by the overlap.
        let byBackfill = try loadedLeads(world, where: "first_run_id = $1", [backfillRun])
        #expect(byBackfill == fakeLeads(world, from: Self.day(90).addingTimeInterval(-Self.overlap), to: Self.day(100).addingTimeInterval(Self.overlap)))
        #expect(!byBackfill.isEmpty)
        let period = try world.db.query("SELECT backfill_run_id, backfilled_at FROM void_periods WHERE id = 1")[0]
        #expect(try period.int(0) == Int(backfillRun))
        #expect(try period.date(1) == Self.day(100.5))
        #expect(try world.db.query("SELECT kind FROM runs WHERE id = $1", [backfillRun])[0].string(0) == "backfill")

        try await runs(world, from: 102.5, to: 140)
        try await connect(world, "EAAB-backfill-user-three", day: 140)
        try await runs(world, from: 140.5, to: 151)
    }

    @Test func everyVoidPeriodIsBackfilledAndTheReportSaysRecovered() async throws {
        let world = try world()
        try await playStory(world)

        // Nothing lost, nothing duplicated: T = L.
        #expect(try loadedLeads(world) == fakeLeads(world, from: .distantPast, to: Self.day(150.5)))
        #expect(try world.db.query("SELECT count(*) = count(DISTINCT lead_id) FROM leads")[0].bool(0) == true)
        // The backfills never moved a watermark backwards: each is the newest lead before the last run.
        for row in try world.db.query("SELECT form_id, high_water FROM watermarks").all {
            let newest = world.fake.leads(ofForm: try row.string(0)!).map { $0.createdAt! }.filter { $0 < Self.day(150.5) }.max()
            #expect(try row.date(1) == newest)
        }

        let report = try gapReport(world, at: 150.5)
        let connection = try #require(report.connections.first)
        #expect(connection.status == "healthy")
        #expect(connection.daysSinceAuthentication == 10)
        #expect(connection.reminder == "not_due")
        #expect(connection.missing == 0)
        #expect(connection.leadsLoaded == fakeLeads(world, from: .distantPast, to: Self.day(150.5)).count)
        #expect(connection.lastHealthyRunAt == Self.day(150.5))
        #expect(connection.periods.map(\.status) == [.recovered, .recovered])
        #expect(connection.periods.map(\.cause) == [.tokenExpired, .permissionRevoked])
        // Void from the expiry instant, and from the run that saw the revocation.
        #expect(connection.periods.map(\.startedAt) == [Self.day(90), Self.day(130.5)])
        #expect(connection.periods.map(\.endedAt) == [Self.day(100), Self.day(140)])
        #expect(connection.periods[0].recovered == fakeLeads(world, from: Self.day(90), to: Self.day(100)).count)
        #expect(connection.periods[1].recovered == fakeLeads(world, from: Self.day(130.5), to: Self.day(140)).count)
        #expect(connection.periods.map(\.lost) == [0, 0])
        #expect(connection.periods.map(\.missing) == [0, 0])
        #expect(report.instances.map(\.recovered) == [connection.periods[0].recovered + connection.periods[1].recovered])

        try checkGolden(report)
        let html = report.render(.html)
        #expect(html.components(separatedBy: "<svg class=\"timeline\"").count - 1 == report.connections.count)
        #expect(html.components(separatedBy: "<tr class=\"period ").count - 1 == 2)
        // Self-contained: nothing runs, nothing is fetched.
        #expect(!html.contains("<script"))
        #expect(!html.contains("src="))
        #expect(!html.contains("href="))
    }

    /// md, csv and json of the story compared with `fixtures/golden/`; LEADFLOW_UPDATE_GOLDEN=1 rewrites them.
    func checkGolden(_ report: GapReport) throws {
        for format in [GapReport.Format.md, .csv, .json] {
            if let difference = try Golden.difference(report.render(format), from: "gap-report.\(format.rawValue)") {
                Issue.record("gap report \(format.rawValue) \(difference)")
            }
        }
    }

    @Test func leadsExpiredDuringTheVoidAreReportedLostAndAHaltedBackfillResumes() async throws {
        let world = try world(expiring: true)
        try await connect(world, "EAAB-backfill-user-one", day: 0)
        try await runs(world, from: 0.5, to: 100)
        try await connect(world, "EAAB-backfill-user-two", day: 100)
        // Form 2001 has a lead every 3 hours: 24 of them were created in [day 90, day 93).
        let expired = Self.scenario(expiring: false).pages[0].forms[0].generate!.leads(formID: "2001")
            .filter { $0.createdAt! >= Self.day(90) && $0.createdAt! < Self.day(93) }.count
        #expect(expired == 24)

        // The first healing run fails on form 2002 every time: its backfill stops half done.
        world.fake.addFault(.init(path: "2002/leads", onRequest: 1, times: 1_000, kind: .http500))
        let halted = try await run(world, day: 100.5)
        #expect(halted.connections.first?.state == .partial(["2002"]))
        #expect(try world.db.query("SELECT backfilled_at IS NULL FROM void_periods WHERE id = 1")[0].bool(0) == true)
        #expect(try world.db.query("SELECT array_agg(form_id) FROM backfill_windows")[0].string(0) == "{2001}")

        var report = try gapReport(world, at: 100.5)
        var period = try #require(report.connections.first?.periods.first)
        #expect(period.status == .awaitingBackfill)
        // Facebook counts form 2002's leads; Integrate holds none since day 88.5: they are missing,
        // and the only period not recovered is where they went.
        let missing2002 = Set(world.fake.leads(ofForm: "2002").map(\.id)).subtracting(try loadedLeads(world)).count
        #expect(missing2002 > 0)
        #expect(period.missing == missing2002)
        #expect(period.missingIsEstimate == false)

        // The rerun resumes: form 2001's committed window is not read again.
        world.fake.clearFaults()
        let before = world.fake.requestLog.count
        let resumed = try await run(world, day: 100.6)
        #expect(resumed.connections.map(\.state) == [.loaded, .loaded])
        let backfillRequests = world.fake.requestLog[before...].filter { $0.path.hasSuffix("/leads") && $0.query.contains(String(Int(Self.day(90).addingTimeInterval(-Self.overlap).timeIntervalSince1970) - 1)) }
        #expect(backfillRequests.allSatisfy { $0.path.contains("2002") } && !backfillRequests.isEmpty)

        report = try gapReport(world, at: 100.6)
        period = try #require(report.connections.first?.periods.first)
        #expect(period.status == .partlyLost)
        #expect(period.lost == expired)
        #expect(period.recovered == fakeLeads(world, from: Self.day(90), to: Self.day(100)).count)
        #expect(report.connections.first?.missing == 0)
        // T = L: everything Facebook still returns, once.
        #expect(try loadedLeads(world) == fakeLeads(world, from: .distantPast, to: Self.day(100.6)))
        #expect(try world.db.query("SELECT count(*) = count(DISTINCT lead_id) FROM leads")[0].bool(0) == true)
    }

    @Test func backfillCommandReadsAGivenWindowAndRefusesUnknownConnections() async throws {
        let world = try world()
        try await connect(world, "EAAB-backfill-user-one", day: 0)
        try await run(world, day: 10)
        try world.db.query("DELETE FROM leads WHERE created_at >= $1 AND created_at < $2", [Self.day(3), Self.day(4)])
        let window = LeadWindow(from: Self.day(3), to: Self.day(4))
        let summary = try await world.stage.backfill(labels: ["acme-main"], window: window, now: Self.day(10.5))
        #expect(summary.connections.map(\.job.description) == ["backfill window"])
        #expect(summary.connections.first?.counts.inserted == fakeLeads(world, from: Self.day(3), to: Self.day(4)).count)
        #expect(try loadedLeads(world) == fakeLeads(world, from: .distantPast, to: Self.day(10)))
        // Nothing awaits a backfill: the connection is idle, not failed.
        let idle = try await world.stage.backfill(labels: nil, window: nil, now: Self.day(10.6))
        #expect(idle.connections.first?.state == .idle("no void period awaits a backfill"))
        #expect(!idle.hasFailures)
        await #expect(throws: RunStage.UnknownConnection.self) {
            _ = try await world.stage.backfill(labels: ["nobody"], window: nil, now: Self.day(10.7))
        }
    }

    /// The client's clock 15 minutes ahead of Facebook's, or behind: after two runs every
    /// lead Facebook shows (below the run's own "now") is loaded once, including one that
    /// Facebook indexed late, and each watermark is a lead's own time, never the local clock.
    @Test(arguments: [15.0, -15.0])
    func clockSkewOfFifteenMinutesLosesNothing(skewMinutes: Double) async throws {
        let world = try world()
        try await connect(world, "EAAB-backfill-user-one", day: 0)
        let server = Self.day(5)
        let skew = skewMinutes * 60
        world.fake.now = server
        _ = try await world.stage.run(now: server.addingTimeInterval(skew))
        // Indexed late: stamped two minutes before the first read, visible only after it.
        world.fake.addLeads([GraphLead(id: "555000001", createdTime: UTCTime.iso8601(server.addingTimeInterval(-120)),
                                       fieldData: [.init(name: "email", values: ["late@indexing.io"])], formID: "2001")], toForm: "2001")
        world.fake.now = server.addingTimeInterval(1_800)
        let clientNow = server.addingTimeInterval(1_800 + skew)
        _ = try await world.stage.run(now: clientNow)

        // What Facebook shows now (up to its clock), below the run's own "now".
        let expected = fakeLeads(world, from: .distantPast, to: clientNow), loaded = try loadedLeads(world)
        #expect(loaded == expected, "missing \(expected.subtracting(loaded).sorted().prefix(5)), extra \(loaded.subtracting(expected).sorted().prefix(5))")
        #expect(try loadedLeads(world).contains("555000001"))
        #expect(try world.db.query("SELECT count(*) = count(DISTINCT lead_id) FROM leads")[0].bool(0) == true)
        for row in try world.db.query("SELECT form_id, high_water FROM watermarks").all {
            let newest = world.fake.leads(ofForm: try row.string(0)!).map { $0.createdAt! }.filter { $0 < clientNow }.max()
            #expect(try row.date(1) == newest, "the watermark is the newest lead's time")
        }
    }

    /// A lead that cannot be made valid is re-read by every overlap. Alone, it is nothing new:
    /// the pass records nothing. Beside a new lead, the pass loads and it is a rejection row
    /// again. Either way it is one rejected lead in the gap report.
    @Test func aRejectedLeadCountsOnceHoweverOftenItIsReRead() async throws {
        let world = try world()
        try await connect(world, "EAAB-backfill-user-one", day: 0)
        world.fake.addLeads([GraphLead(id: "666000001", createdTime: UTCTime.iso8601(Self.day(1)),
                                       fieldData: [.init(name: "full_name", values: ["No Contact"])], formID: "2001")], toForm: "2001")
        try await run(world, day: 1.001)
        try await run(world, day: 1.002)     // the overlap reads it again, and nothing else
        #expect(try world.db.query("SELECT count(*) FROM lead_rejections WHERE lead_id = '666000001'")[0].int(0) == 1)
        world.fake.addLeads([GraphLead(id: "666000002", createdTime: UTCTime.iso8601(Self.day(1.0015)),
                                       fieldData: [.init(name: "email", values: ["new@lead.io"])], formID: "2001")], toForm: "2001")
        try await run(world, day: 1.003)     // the overlap reads it again, beside a new lead
        #expect(try world.db.query("SELECT count(*) FROM lead_rejections WHERE lead_id = '666000001'")[0].int(0) == 2)
        let connection = try #require(try gapReport(world, at: 1.01).connections.first)
        #expect(connection.rejected == ["no_contact": 1])
    }
}

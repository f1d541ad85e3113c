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

/// The scheduled run with the real parts: three connections, a dozen forms, 20,000 leads.
@Suite struct RunStageTests {
    static let start = "2026-10-01T00:00:00+0000"
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!

    static func scenario() -> GraphScenario {
        var pages: [GraphScenario.Page] = []
        var tokens: [GraphScenario.Token] = []
        for (p, pageID) in ["1001", "1002", "1003"].enumerated() {
            var forms: [GraphScenario.Form] = (0..<4).map { f in
                .init(id: "\(pageID)\(f)", name: "Form \(f) of \(pageID)",
                      generate: .init(count: f == 0 ? (p == 0 ? 2_500 : 2_000) : 1_500, start: start, spacingSeconds: 180 + p * 7 + f))
            }
            if p == 0 { forms[1].status = "ARCHIVED" }
            if p == 1 { forms[2].generate?.organicEvery = 1 }
            if p == 2 { forms[3].generate?.customQuestions = true; forms[3].locale = "fr_FR" }
            pages.append(.init(id: pageID, name: "Page \(pageID)", forms: forms))
            var token = GraphScenario.Token(token: "EAAB-run-token-\(pageID)", pages: [pageID])
            token.type = "USER"
            tokens.append(token)
        }
        var scenario = GraphScenario(pages: pages, tokens: tokens)
        scenario.shortPageEvery = 7
        return scenario
    }

    struct World {
        let fake: GraphFake
        let db: PostgresConnection
        let home: URL
        let stage: RunStage
        let pipeline: Pipeline
    }

    func world() async throws -> World {
        let db = try PostgresConnection(conninfo: try TestDatabase.create("run"))
        let session = try PostgresSession(conninfo: db.conninfo)
        try Migrator().migrate(db)
        let scenario = Self.scenario()
        let fake = try GraphFake(scenario: scenario, now: Self.now)
        let home = try Repository.temporaryFolder("runhome")
        let vault = try TokenVault.openOrCreate(keyFile: home.appendingPathComponent("token.key"))
        let graph = GraphClient(transport: try CurlHTTPClient(), configuration: .init(baseURL: fake.baseURL, pageSize: 200, appSecret: GraphScenario().appSecret),
                                sleeper: RecordingSleeper())
        let settings = ValidationSettings(appID: scenario.appID, appSecret: scenario.appSecret)
        let connections = ConnectionStore(session)
        let connector = Connector(graph: graph, repository: connections, sealer: vault, settings: settings)
        for page in ["1001", "1002", "1003"] {
            _ = try await connector.connect(.init(instance: "acme", pageID: page, label: "acme-\(page)", token: AccessToken("EAAB-run-token-\(page)")),
                                            now: Self.now.addingTimeInterval(-86_400))
        }
        var pipeline = Pipeline(name: "test")
        pipeline.defaultSource = "facebook"
        let stage = RunStage(graph: graph, connections: connections, leads: LeadStore(session),
                             archiver: TarArchiver(home: home, compression: .zstd), sealer: vault, erasure: ErasureKey.random(), pipeline: pipeline,
                             settings: settings, spoolRoot: home.appendingPathComponent("spool"))
        return World(fake: fake, db: db, home: home, stage: stage, pipeline: pipeline)
    }

    /// (lead id → email, created) of the table.
    func table(_ db: PostgresConnection) throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try db.query("SELECT lead_id, coalesce(email, '') || '|' || created_at::text || '|' || coalesce(source_id, '') FROM leads").all.map {
            (try $0.string(0)!, try $0.string(1)!)
        })
    }

    /// What the table must hold: every lead the fake returns, transformed.
    func expected(_ world: World) -> [String: String] {
        var expected: [String: String] = [:]
        let transformer = LeadTransformer(pipeline: world.pipeline)
        for lead in world.fake.allVisibleLeads() where lead.createdAt! < world.fake.now {
            let context = LeadContext(instance: "acme", connectionID: 0, pageID: "", formID: lead.formID ?? "", formName: nil)
            if case .lead(let transformed) = transformer.transform(lead, context: context) {
                let created = UTCTime.fields(transformed.createdAt)
                expected[lead.id] = "\(transformed.email ?? "")|\(String(format: "%04d-%02d-%02d %02d:%02d:%02d+00", created.year, created.month, created.day, created.hour, created.minute, created.second))|facebook"
            }
        }
        return expected
    }

    @Test func runsLoadEveryLeadExactlyOnceAndRerunsChangeNothing() async throws {
        let world = try await world()
        let first = try await world.stage.run(now: Self.now)
        #expect(first.connections.map(\.state) == [.loaded, .loaded, .loaded])
        #expect(first.connections.reduce(0) { $0 + $1.counts.inserted } == 20_000)
        let loaded = try table(world.db)
        #expect(loaded.count == 20_000)
        #expect(loaded == expected(world))
        #expect(try world.db.query("SELECT count(*) FROM leads WHERE is_organic AND ad_id IS NOT NULL")[0].int(0) == 0)
        #expect(try world.db.query("SELECT count(*) FROM leads WHERE answers ? 'Quel est votre budget annuel ?'")[0].int(0) == 1_500)
        #expect(try world.db.query("SELECT count(*) FROM forms WHERE status = 'ARCHIVED'")[0].int(0) == 1)

        // A second run changes nothing, and costs one round trip per connection: the token
        // was verified within the hour, and the forms list and each known form's first page
        // come in one batch request.
        let before = world.fake.requestLog.count
        let second = try await world.stage.run(now: Self.now.addingTimeInterval(600))
        let calls = world.fake.requestLog.dropFirst(before)
        #expect(calls.filter { !$0.batched }.count == 3, "one HTTP request per connection: \(calls.filter { !$0.batched }.map(\.path))")
        #expect(calls.filter { $0.path.hasSuffix("/leads") }.count == 12, "each form's first page, inside the batches")
        #expect(!calls.contains { $0.path.hasSuffix("debug_token") }, "no preflight within the hour")
        #expect(second.connections.allSatisfy { $0.counts.inserted == 0 && $0.counts.updated == 0 })
        #expect(second.connections.reduce(0) { $0 + $1.counts.unchanged } > 0, "the overlap re-read some leads")
        #expect(try table(world.db) == loaded)

        // A lead edited in Facebook is updated; leads arriving between runs are picked up,
        // including one stamped in the watermark's own second that appears only now.
        let edited = try #require(world.fake.leads(ofForm: "10010").first)
        world.fake.replaceLead(GraphLead(id: edited.id, createdTime: edited.createdTime, fieldData: [.init(name: "email", values: ["new@address.io"])],
                                         formID: "10010", isOrganic: true), inForm: "10010")
        let watermark = try #require(try world.db.query("SELECT high_water FROM watermarks WHERE form_id = '10010'")[0].date(0))
        world.fake.addLeads([
            GraphLead(id: "777000001", createdTime: UTCTime.iso8601(watermark), fieldData: [.init(name: "email", values: ["boundary@second.io"])], formID: "10010"),
            GraphLead(id: "777000002", createdTime: UTCTime.iso8601(Self.now.addingTimeInterval(900)), fieldData: [.init(name: "email", values: ["later@lead.io"])], formID: "10010"),
        ], toForm: "10010")
        world.fake.now = Self.now.addingTimeInterval(1800)
        let third = try await world.stage.run(now: Self.now.addingTimeInterval(1800))
        #expect(third.connections.reduce(0) { $0 + $1.counts.updated } == 1)
        #expect(third.connections.reduce(0) { $0 + $1.counts.inserted } == 2)
        let after = try table(world.db)
        #expect(after.count == 20_002)
        #expect(after[edited.id]?.hasPrefix("new@address.io|") == true)
        #expect(after == expected(world))
        #expect(try world.db.query("SELECT count(*) = count(DISTINCT lead_id) FROM leads")[0].bool(0) == true)
        #expect(try world.db.query("SELECT count(*) FROM runs WHERE status = 'succeeded'")[0].int(0) == 3)
    }

    @Test func invalidLeadsBecomeRejectionRowsAndTheRunSaysSo() async throws {
        let world = try await world()
        world.fake.addLeads([
            GraphLead(id: "888000001", createdTime: "2026-11-01T00:00:00+0000", fieldData: [.init(name: "full_name", values: ["No Contact"])]),
            GraphLead(id: "888000002", createdTime: "not a time", fieldData: [.init(name: "email", values: ["x@y.io"])]),
        ], toForm: "10020")
        let summary = try await world.stage.run(now: Self.now)
        #expect(summary.hasGaps)
        #expect(summary.connections.reduce(0) { $0 + $1.counts.rejected } == 1, "the lead with no parsable time is not visible to a window")
        let reasons = try world.db.query("SELECT lead_id, array_to_string(reasons, ',') FROM lead_rejections").all.map { "\(try $0.string(0) ?? "")=\(try $0.string(1)!)" }
        #expect(reasons == ["888000001=no_contact"])
        #expect(try world.db.query("SELECT count(*) FROM leads WHERE lead_id LIKE '888%'")[0].int(0) == 0)
    }

    @Test func archivesAreReadableVerifiedAndHoldNoToken() async throws {
        let world = try await world()
        _ = try await world.stage.run(now: Self.now)
        let paths = try world.db.query("SELECT path, sha256 FROM archives ORDER BY id").all.map { (try $0.string(0)!, try $0.string(1)!) }
        #expect(paths.count == 3)
        for (path, sha) in paths {
            let url = world.home.appendingPathComponent(path)
            #expect(try ArchiveVerifier.sha256(of: url) == sha)
            #expect(try ArchiveVerifier.verify(url) > 1)
            for tool in ["tar", "bsdtar"] {
                let listing = try await runProgram(tool, ["-tf", url.path])
                #expect(listing.status == 0)
                #expect(listing.stdout.contains("manifest.json"))
            }
            let content = try await runProgram("bsdtar", ["-xOf", url.path])
            #expect(content.stdout.contains("\"paging\""), "raw pages as they arrived")
            #expect(!content.stdout.contains("EAAB-run-token"))
            #expect(!content.stdout.contains("access_token=EAAB"))
        }
        // A corrupted archive fails verification.
        let url = world.home.appendingPathComponent(paths[0].0)
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: url)
        #expect(throws: (any Error).self) { try ArchiveVerifier.verify(url) }
        // Every lead points at an archive that exists.
        #expect(try world.db.query("SELECT count(*) FROM leads l LEFT JOIN archives a ON a.id = l.archive_id WHERE a.id IS NULL")[0].int(0) == 0)
    }

    @Test func aConnectionAnotherRunHoldsIsSkipped() async throws {
        let world = try await world()
        // Connection 1's lease is held by another run, live for the next minute.
        let other = try await LeadStore(PostgresSession(conninfo: world.db.conninfo))
            .acquireConnection(1, holder: "another-run", lease: .seconds(60))
        #expect(other?.fence == 1)
        let summary = try await world.stage.run(now: Self.now)
        // Another worker has it: not this run's failure, so no exit 1 for the scheduler.
        #expect(summary.connections[0].state == .idle("another run is processing it"))
        #expect(!summary.hasFailures)
        #expect(summary.connections[1].state == .loaded)
        #expect(try world.db.query("SELECT count(*) FROM leads WHERE connection_id = 1")[0].int(0) == 0)
        // Its lease ended (released, or lapsed): the next run takes it, the fence raised.
        try await LeadStore(PostgresSession(conninfo: world.db.conninfo)).releaseConnection(try #require(other))
        let next = try await world.stage.run(now: Self.now.addingTimeInterval(60))
        #expect(next.connections[0].state == .loaded)
        #expect(try world.db.query("SELECT fence FROM connection_leases WHERE connection_id = 1")[0].int(0) == 2)
    }
}

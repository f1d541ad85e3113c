import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// The edges of issue 18: where a token could leave in clear, a throttled Graph could hold
/// a run for ever, or personal data could be read by another local user.
@Suite struct EdgeTests {
    static let day = TestDays(zero: "2026-11-01T09:00:00Z")

    /// Two Pages of one instance, each with a form of `count` leads before day 0.
    static func twoPages(count: Int = 40) throws -> GraphFake {
        var scenario = GraphScenario(
            pages: ["1001", "1002"].map { page in
                .init(id: page, name: "Page \(page)", forms: [
                    .init(id: "\(page)0", name: "Form of \(page)", generate: .init(count: count, start: "2026-10-20T00:00:00+0000", spacingSeconds: 3_600)),
                ])
            },
            tokens: [.init(token: "EAAB-edge-token", pages: ["1001", "1002"])])
        scenario.tokens[0].type = "USER"
        return try GraphFake(scenario: scenario, now: day(0))
    }

    struct Setup {
        let fake: GraphFake
        let databaseURL: String
        let home: URL
        var leadflow: LeadFlowCLI { LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, days: EdgeTests.day) }

        func connectBoth() async throws {
            for page in ["1001", "1002"] {
                let result = try await leadflow(["connect", "--instance", "acme", "--page", page, "--name", "acme-\(page)"], day: 0,
                                                input: "EAAB-edge-token\n")
                #expect(result.status == 0, "\(result.stderr)")
            }
        }
    }

    func setUp(_ purpose: String) throws -> Setup {
        Setup(fake: try Self.twoPages(), databaseURL: try TestDatabase.create(purpose), home: try Repository.temporaryFolder(purpose))
    }

    /// A Graph URL of `http://` off this machine would send every bearer token in clear:
    /// refused with exit 64, naming the setting, before any request (the fake sees none).
    @Test func aPlainHTTPGraphURLOffLoopbackIsRefusedBeforeAnyRequest() async throws {
        let setup = try setUp("plainhttp")
        try await setup.connectBoth()
        let requestsBefore = setup.fake.requestLog.count
        for url in ["http://graph.facebook.com", "http://10.0.0.7:8080", "ftp://127.0.0.1"] {
            let result = try await setup.leadflow(["run"], day: 1, extra: ["LEADFLOW_GRAPH_URL": url])
            #expect(result.status == 64, "\(url): \(result.stderr)")
            #expect(result.stderr.contains("LEADFLOW_GRAPH_URL"), "\(result.stderr)")
            #expect(result.stderr.contains("https://"), "\(result.stderr)")
        }
        let file = setup.home.appendingPathComponent("plain.yml")
        try "version: 1\ngraph:\n  base_url: http://graph.facebook.com\n".write(to: file, atomically: true, encoding: .utf8)
        var environment = setup.leadflow.environment(at: Self.day(1))
        environment.removeValue(forKey: "LEADFLOW_GRAPH_URL")
        let fromFile = try await LeadFlowBinary.run(["run", "--pipeline", file.path], environment: environment)
        #expect(fromFile.status == 64, "\(fromFile.stderr)")
        #expect(fromFile.stderr.contains("graph.base_url"), "\(fromFile.stderr)")
        #expect(setup.fake.requestLog.count == requestsBefore, "no request left for any of them")
    }

    /// Graph throttles longer than the run may wait (`graph.max_rate_limit_wait_seconds`, 0
    /// here, so no wait at all). A Page's own limit (a business use case with Graph's
    /// estimate) fails that Page's form only: the other Page loads. The app's limit (code 4)
    /// stops the run's waiting: that connection's form fails, every later connection is
    /// skipped with the reason, the run exits 1 at once. The next run, Graph well again,
    /// loads every lead exactly once.
    @Test func rateLimitsPastTheRunsBudgetSkipTheRestWithAReason() async throws {
        let setup = try setUp("ratebudget")
        try await setup.connectBoth()
        let file = setup.home.appendingPathComponent("budget.yml")
        try "version: 1\ngraph:\n  max_rate_limit_wait_seconds: 0\nworkers:\n  connections_at_once: 1\n"
            .write(to: file, atomically: true, encoding: .utf8)
        func states(_ result: ProcessResult) throws -> [String: String] {
            let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            return Dictionary(uniqueKeysWithValues: (summary["connections"] as? [[String: Any]] ?? []).compactMap { pass in
                (pass["connection"] as? String).map { ($0, pass["state"] as? String ?? "") }
            })
        }

        setup.fake.addFault(.init(path: "10010/leads", onRequest: 1, times: 1_000, kind: .graphError,
                                  fixture: "lead_gen_rate_limit_80005", regainAccessMinutes: 30))
        let started = ContinuousClock.now
        let pageLimited = try await setup.leadflow(["run", "--pipeline", file.path, "--json"], day: 1)
        #expect(pageLimited.status == 1, "\(pageLimited.stderr)")
        #expect(try states(pageLimited) == ["acme-1001": "partial", "acme-1002": "loaded"], "\(pageLimited.stdout)")

        setup.fake.clearFaults()
        for page in ["1001", "1002"] {
            setup.fake.addFault(.init(path: "\(page)0/leads", onRequest: 1, times: 1_000, kind: .graphError, fixture: "app_rate_limit_4"))
        }
        let appLimited = try await setup.leadflow(["run", "--pipeline", file.path, "--json"], day: 1.05)
        #expect(appLimited.status == 1, "\(appLimited.stderr)")
        #expect(ContinuousClock.now - started < .seconds(120), "no 30-minute wait was taken")
        #expect(appLimited.stderr.contains("graph.max_rate_limit_wait_seconds"), "\(appLimited.stderr)")
        #expect(try states(appLimited).values.sorted() == ["partial", "skipped"], "\(appLimited.stdout)")

        setup.fake.clearFaults()
        let healed = try await setup.leadflow(["run", "--pipeline", file.path], day: 1.1)
        #expect(healed.status == 0, "\(healed.stderr)")
        let db = try PostgresConnection(conninfo: setup.databaseURL)
        let expected = Set(["10010", "10020"].flatMap { setup.fake.leads(ofForm: $0).map(\.id) })
        let loaded = try db.query("SELECT lead_id FROM leads").all.map { try $0.string(0)! }
        #expect(loaded.count == expected.count && Set(loaded) == expected, "every lead once")
    }

    /// Every file LeadFlow writes (archives, spool, keys, extracted pages) is 0600 and every
    /// folder 0700, after run, backfill, erase and extract, whatever the caller's umask.
    @Test func everyFileLeadFlowWritesIsReadableByItsUserOnly() async throws {
        let setup = try setUp("modes")
        try await setup.connectBoth()
        #expect(try await setup.leadflow(["run"], day: 1).status == 0)
        let backfill = try await setup.leadflow(["backfill", "--connection", "acme-1001", "--since", "2026-10-19T00:00:00Z",
                                                 "--until", "2026-11-01T00:00:00Z"], day: 1.5)
        #expect(backfill.status == 0, "\(backfill.stderr)")
        let lead = try #require(setup.fake.leads(ofForm: "10010").first)
        let erase = try await setup.leadflow(["erase", "--lead", lead.id], day: 2)
        #expect(erase.status == 0, "\(erase.stderr)")
        let archive = try #require(FileManager.default.enumerator(atPath: setup.home.appendingPathComponent("archives").path)?
            .compactMap { $0 as? String }.first { $0.hasSuffix(".tar.zst") })
        let extracted = setup.home.appendingPathComponent("extracted")
        let extract = try await setup.leadflow(["archive", "extract", setup.home.appendingPathComponent("archives/\(archive)").path,
                                                "--to", extracted.path], day: 2)
        #expect(extract.status == 0, "\(extract.stderr)")

        var checked = 0
        let enumerator = try #require(FileManager.default.enumerator(atPath: setup.home.path))
        while let name = enumerator.nextObject() as? String {
            let path = setup.home.appendingPathComponent(name).path
            var info = stat()
            #expect(lstat(path, &info) == 0)
            let mode = info.st_mode & 0o777
            let isFolder = (info.st_mode & S_IFMT) == S_IFDIR
            // The test's own pipeline files are not LeadFlow's.
            if name.hasSuffix(".yml") { continue }
            #expect(mode == (isFolder ? 0o700 : 0o600), "\(name) is \(String(mode, radix: 8))")
            checked += 1
        }
        #expect(checked >= 6, "archives, keys and extracted pages were all looked at (\(checked))")
    }

    /// Pages of 50 MB (100 leads with a 500 kB answer each; Graph caps a page at 100 leads
    /// but not its size), two forms read at once. The transfers' bodies are bounded together
    /// (`CurlHTTPClient.Configuration.maxBufferedBytes`), so one such page is alive at a time,
    /// not one per stream; it is parsed and redacted in place. Every lead loads with its
    /// answer whole. Measured here alone (debug build): 470 MB before, 154 MB after. The
    /// issue's 128 MB is not reached: a parsed page is held twice (its body for the archive,
    /// its leads), over a 60 MB base (docs/benchmarks.md).
    @Test func fiftyMegabytePagesLoadWhole() async throws {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Big answers", forms: ["10010", "10011"].map { .init(id: $0, name: "Form \($0)", leads: []) })],
            tokens: [.init(token: "EAAB-big-token", pages: ["1001"])])
        scenario.tokens[0].type = "USER"
        let fake = try GraphFake(scenario: scenario, now: Self.day(0))
        let answer = String(repeating: "Long answer with accents é and quotes \" ", count: 500_000 / 40)
        for form in ["10010", "10011"] {
            fake.addLeads((0..<200).map { n in
                GraphLead(id: "\(form)\(String(format: "%05d", n))", createdTime: "2026-10-2\(n % 9)T10:00:00+0000",
                          fieldData: [.init(name: "email", values: ["p\(n)@example.com"]), .init(name: "comments", values: [answer])],
                          formID: form, isOrganic: true, platform: "fb")
            }, toForm: form)
        }
        let setup = Setup(fake: fake, databaseURL: try TestDatabase.create("bigpages"), home: try Repository.temporaryFolder("bigpages"))
        let connect = try await setup.leadflow(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-big"], day: 0,
                                               input: "EAAB-big-token\n")
        #expect(connect.status == 0, "\(connect.stderr)")
        let run = try await setup.leadflow(["run"], day: 1)
        #expect(run.status == 0, "\(run.stderr)")
        let db = try PostgresConnection(conninfo: setup.databaseURL)
        let loaded = try db.query("SELECT count(*), min(length(answers::text)) FROM leads")[0]
        #expect(try loaded.int(0) == 400)
        #expect(try loaded.int(1)! > 490_000, "every answer whole")
        // Printed, not asserted: alone it is 154 MB here, under the whole suite's load it was
        // seen at 452 MB (transfers paused longer; see docs/benchmarks.md), and a figure that
        // depends on the machine's load is no test.
        print("50 MB pages: peak resident set \(run.peakResidentBytes >> 20) MB")
    }
}

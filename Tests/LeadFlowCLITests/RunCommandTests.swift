import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// `leadflow run` and `leadflow archive` as a scheduler runs them, including SIGKILL in each
/// stage and at (seeded) random instants: a rerun always ends with every lead loaded exactly once.
@Suite(.serialized) struct RunCommandTests {
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let leadflow: LeadFlowCLI

    init() throws {
        var pages: [GraphScenario.Page] = []
        var tokens: [GraphScenario.Token] = []
        for pageID in ["1001", "1002"] {
            pages.append(.init(id: pageID, name: "Page \(pageID)", forms: (0..<3).map { f in
                .init(id: "\(pageID)\(f)", name: "Form \(f)", generate: .init(count: 1_000, start: "2026-10-01T00:00:00+0000", spacingSeconds: 300))
            }))
            var token = GraphScenario.Token(token: "EAAB-kill-token-\(pageID)", pages: [pageID])
            token.type = "USER"
            tokens.append(token)
        }
        var scenario = GraphScenario(pages: pages, tokens: tokens)
        scenario.latencyMilliseconds = 3
        fake = try GraphFake(scenario: scenario, now: Self.now)
        databaseURL = try TestDatabase.create("runcmd")
        home = try Repository.temporaryFolder("runcmd")
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, now: Self.now)
    }

    func connectBoth() async throws {
        for page in ["1001", "1002"] {
            let result = try await leadflow(["connect", "--instance", "acme", "--page", page, "--name", "acme-\(page)"],
                                      input: "EAAB-kill-token-\(page)\n")
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    /// The leads table equals the fake's leads, with no duplicate.
    func expectExactlyTheFakesLeads() throws {
        let db = try PostgresConnection(conninfo: databaseURL)
        let ids = Set(try db.query("SELECT lead_id FROM leads").all.map { try $0.string(0)! })
        #expect(ids == Set(fake.allVisibleLeads().filter { $0.createdAt! < Self.now }.map(\.id)))
        #expect(try db.query("SELECT count(*) = count(DISTINCT lead_id) FROM leads")[0].bool(0) == true)
        #expect(try db.query("SELECT count(*) FROM leads l LEFT JOIN archives a ON a.id = l.archive_id WHERE a.id IS NULL")[0].int(0) == 0)
    }

    @Test func aRunLoadsArchivesAndAnswersTheScheduler() async throws {
        try await connectBoth()
        let run = try await leadflow(["run"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("acme-1001"))
        #expect(run.stderr.contains("loaded"))
        try expectExactlyTheFakesLeads()

        let list = try await leadflow(["archive", "list"])
        #expect(list.status == 0)
        #expect(list.stdout.contains("archives/acme/1001/run-1.tar.zst"))
        let verify = try await leadflow(["archive", "verify", "--all"])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stderr.components(separatedBy: "ok ").count == 3)

        let archive = home.appendingPathComponent("archives/acme/1001/run-1.tar.zst")
        let target = home.appendingPathComponent("extracted")
        let extract = try await leadflow(["archive", "extract", archive.path, "--to", target.path])
        #expect(extract.status == 0, "\(extract.stderr)")
        #expect(FileManager.default.fileExists(atPath: target.appendingPathComponent("manifest.json").path))

        // A corrupted archive fails verification, with exit 1.
        var bytes = try Data(contentsOf: archive)
        bytes[bytes.count / 3] ^= 0x55
        try bytes.write(to: archive)
        let broken = try await leadflow(["archive", "verify", "--all"])
        #expect(broken.status == 1)
        #expect(broken.stderr.contains("FAILED"))
    }

    @Test func aBadPipelineFileIsRefusedBeforeAnyWork() async throws {
        let file = home.appendingPathComponent("bad.yml")
        try Data("graph:\n  page_size: 100\n  concurency: 4\n".utf8).write(to: file)
        let result = try await leadflow(["run", "--pipeline", file.path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("\(file.path):3: graph.concurency: unknown key"))
        let db = try PostgresConnection(conninfo: databaseURL)
        #expect(try db.query("SELECT to_regclass('runs') IS NULL")[0].bool(0) == true, "not even the schema was touched")
    }

    @Test func rejectedLeadsMakeTheRunExitTwo() async throws {
        try await connectBoth()
        fake.addLeads([GraphLead(id: "555000001", createdTime: "2026-11-01T00:00:00+0000",
                                 fieldData: [.init(name: "full_name", values: ["Nobody Reachable"])])], toForm: "10010")
        let run = try await leadflow(["run"])
        #expect(run.status == 2, "\(run.stderr)")
        #expect(!run.stderr.contains("Nobody Reachable"), "no personal data in what the run prints")
        let db = try PostgresConnection(conninfo: databaseURL)
        #expect(try db.query("SELECT array_to_string(reasons, ',') FROM lead_rejections")[0].string(0) == "no_contact")
    }

    @Test(arguments: ["dotdot", "absolute", "symlink"])
    func aHostileArchiveIsRefusedWholeOnExtract(kind: String) async throws {
        let work = try Repository.temporaryFolder("hostile")
        let evil = work.appendingPathComponent("evil.tar")
        try Data("x".utf8).write(to: work.appendingPathComponent("x"))
        let made: ProcessResult
        switch kind {
        case "dotdot": made = try await runProgram("tar", ["-cPf", evil.path, "--transform", "s,^,../,", "x"], in: work)
        case "absolute": made = try await runProgram("tar", ["-cPf", evil.path, work.appendingPathComponent("x").path])
        default:
            try FileManager.default.createSymbolicLink(atPath: work.appendingPathComponent("link").path, withDestinationPath: "/etc/passwd")
            made = try await runProgram("tar", ["-cf", evil.path, "x", "link"], in: work)
        }
        #expect(made.status == 0, "\(made.stderr)")
        let target = work.appendingPathComponent("out")
        let result = try await leadflow(["archive", "extract", evil.path, "--to", target.path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("refused"))
        #expect(!FileManager.default.fileExists(atPath: target.appendingPathComponent("x").path), "nothing written")
    }

    func leadCount() throws -> Int {
        try PostgresConnection(conninfo: databaseURL).query("SELECT count(*) FROM leads")[0].int(0) ?? -1
    }

    /// Killed at the debug point of each stage in turn (extract, archive, COPY, commit): each
    /// kill lands where it names (the point's own line, then SIGKILL, with the progress
    /// lines showing that stage) and commits nothing. Then killed just after a window's
    /// commit: some leads are in, not all. A rerun then loads every lead once.
    @Test func killedInEachStageThenRerunLosesAndDuplicatesNothing() async throws {
        try await connectBoth()
        for point in [DebugKill.extract, DebugKill.archive, DebugKill.copy, DebugKill.commit, DebugKill.committed] {
            let killed = try await leadflow(["run"], extra: ["LEADFLOW_DEBUG_KILL_AT": point])
            #expect(Killed.byPoint(point, killed), "killed at \(point)? status \(killed.status): \(killed.stderr.suffix(600))")
            #expect(PassStage.reached(in: killed.stderr) == PassStage.of(killPoint: point), "\(point): \(killed.stderr.suffix(600))")
            if point == DebugKill.committed {
                let loaded = try leadCount()
                #expect(loaded > 0 && loaded < fake.allVisibleLeads().filter { $0.createdAt! < Self.now }.count, "killed after a commit: \(loaded) leads")
            } else {
                // The first window's commit is after every other point: a kill at any of them leaves no lead.
                #expect(try leadCount() == 0, "killed at \(point)")
            }
            try Killed.lapseConnectionLeases(databaseURL)
        }
        let final = try await leadflow(["run"])
        #expect(final.status == 0, "\(final.stderr)")
        try expectExactlyTheFakesLeads()
    }

    @Test func killedAtRandomInstantsThenRerunLosesAndDuplicatesNothing() async throws {
        try await connectBoth()
        // How long an uninterrupted run takes here, to spread the kills over it: the shorter
        // of two, since a probe slowed by a busy machine would put most kills after the end.
        var duration = Double.infinity
        for _ in 0..<2 {
            let probe = LeadFlowCLI(databaseURL: try TestDatabase.create("probe"), home: try Repository.temporaryFolder("probe"),
                                    fake: fake, now: Self.now)
            for page in ["1001", "1002"] {
                _ = try await probe(["connect", "--instance", "acme", "--page", page, "--name", "acme-\(page)"], input: "EAAB-kill-token-\(page)\n")
            }
            let started = Date()
            _ = try await probe(["run"])
            duration = min(duration, Date().timeIntervalSince(started))
        }

        var generator = SeededGenerator.fromEnvironment()
        let replay = "replay with LEADFLOW_TEST_SEED=\(generator.seed)"
        print("killedAtRandomInstants: \(replay)")
        // 20 in CI; scripts/fault-suite.sh sets 100.
        let rounds = Int(ProcessInfo.processInfo.environment["LEADFLOW_KILL_ROUNDS"] ?? "") ?? 20
        var reached: [String] = []
        for round in 0..<rounds {
            let process = try SpawnedProcess(LeadFlowBinary.path, ["run"], environment: leadflow.environment())
            let delay = Double.random(in: 0.05...max(0.1, duration), using: &generator)
            try await Task.sleep(for: .seconds(delay))
            kill(process.processIdentifier, SIGKILL)
            let ended = await process.exit()
            // A round that ended before its kill came killed nothing: it says "finished", not a stage.
            #expect(ended.status == Killed.status || ended.status == 0, "round \(round): \(replay): \(ended.stderr.suffix(600))")
            reached.append((ended.status == Killed.status ? "\(PassStage.reached(in: ended.stderr))" : "finished") + String(format: " at %.2f s", delay))
            try Killed.lapseConnectionLeases(databaseURL)
        }
        print("killedAtRandomInstants: an uninterrupted run took \(String(format: "%.2f", duration)) s; stages reached by the kills: \(reached.joined(separator: ", ")); \(replay)")
        #expect(reached.contains { !$0.hasPrefix("finished") }, "no round was killed before it finished: \(replay)")
        let final = try await leadflow(["run"])
        #expect(final.status == 0, "\(replay): \(final.stderr)")
        try expectExactlyTheFakesLeads()
        // The killed runs are marked abandoned and their spool folders swept.
        let db = try PostgresConnection(conninfo: databaseURL)
        #expect(try db.query("SELECT count(*) FROM runs WHERE status = 'running'")[0].int(0) == 0, "\(replay)")
        #expect(try db.query("SELECT count(*) FROM runs WHERE status = 'succeeded'")[0].int(0) ?? 0 >= 1)
        let spool = (try? FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent("spool").path)) ?? []
        #expect(spool.isEmpty, "left in the spool: \(spool); \(replay)")
        // No partial archive under a final name: every archive file verifies.
        let archives = try FileManager.default.subpathsOfDirectory(atPath: home.appendingPathComponent("archives").path)
            .filter { $0.hasSuffix(".tar.zst") && !($0.split(separator: "/").last?.hasPrefix(".") ?? false) }
        #expect(!archives.isEmpty)
        for path in archives {
            let verify = try await leadflow(["archive", "verify", home.appendingPathComponent("archives/\(path)").path])
            #expect(verify.status == 0, "\(path): \(verify.stderr); \(replay)")
        }
    }

    /// The archive cannot be written (a file-size limit stands in for a full disk: the
    /// write fails part way, as ENOSPC would): the run fails with a clear message, no
    /// archive is published under its final name, no row is committed; with room again, a
    /// rerun archives, verifies and loads everything.
    @Test func anArchiveThatCannotBeWrittenCommitsNothingAndARerunHeals() async throws {
        try await connectBoth()
        // The spool fits under the limit (1,000 kB: raw pages of about 60 kB, a form's ready
        // rows of about 450 kB); a connection's uncompressed archive (its pages together,
        // about 1.8 MB) does not. SIGXFSZ is ignored so the write fails with an error
        // instead of killing the process.
        let limited = try await runProgram("/bin/bash", ["-c", "trap '' XFSZ; ulimit -f 1000; exec \"$0\" run --pipeline \"$1\"", LeadFlowBinary.path,
                                                   Repository.fixture("pipelines/uncompressed-archives.yml").path], environment: leadflow.environment())
        #expect(limited.status == 1, "\(limited.stderr)")
        #expect(limited.stderr.contains("leadflow: archive"), "\(limited.stderr)")
        let db = try PostgresConnection(conninfo: databaseURL)
        #expect(try db.query("SELECT count(*) FROM leads")[0].int(0) == 0)
        #expect(try db.query("SELECT count(*) FROM archives")[0].int(0) == 0)
        #expect(try db.query("SELECT count(*) FROM watermarks")[0].int(0) == 0)
        let published = (FileManager.default.enumerator(atPath: home.appendingPathComponent("archives").path)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".tar.zst") && !($0.split(separator: "/").last?.hasPrefix(".") ?? false) }
        #expect(published.isEmpty, "no archive under a final name: \(published)")

        let healed = try await leadflow(["run", "--pipeline", Repository.fixture("pipelines/uncompressed-archives.yml").path])
        #expect(healed.status == 0, "\(healed.stderr)")
        try expectExactlyTheFakesLeads()
        #expect(try await leadflow(["archive", "verify", "--all"]).status == 0)
    }
}

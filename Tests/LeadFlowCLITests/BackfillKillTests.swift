import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// `leadflow backfill` killed with SIGKILL in each stage, then at (seeded) random instants,
/// then run again: it resumes after the windows it committed and ends exactly where an
/// uninterrupted backfill ends.
@Suite(.serialized) struct BackfillKillTests {
    static let day = TestDays(zero: "2026-03-02T09:00:00Z")

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let leadflow: LeadFlowCLI

    init() throws {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme Analytics", forms: (1...4).map { f in
                .init(id: "200\(f)", name: "Form \(f)", generate: .init(count: 6_000, start: "2026-03-02T09:0\(f):00+0000", spacingSeconds: 600))
            })],
            // Facebook ends the first user's data access on day 20 (they stopped using the
            // app): the connection's end moves from day 90 to day 20.
            tokens: [.user("EAAB-kill-backfill-one", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(0))),
                     .user("EAAB-kill-backfill-two", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(30)))])
        scenario.tokens[0].dataAccessExpiresAt = UTCTime.iso8601(Self.day(20))
        scenario.latencyMilliseconds = 3
        fake = try GraphFake(scenario: scenario, now: Self.day(0))
        databaseURL = try TestDatabase.create("killbackfill")
        home = try Repository.temporaryFolder("killbackfill")
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, days: Self.day,
                               pipeline: Repository.fixture("pipelines/no-automatic-backfill.yml"))
    }

    @Test func aKilledBackfillResumesAndEndsIdenticalToAnUninterruptedOne() async throws {
        let connect = ["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"]
        #expect(try await leadflow(connect, day: 0, input: "EAAB-kill-backfill-one\n").status == 0)
        #expect(try await leadflow(["run"], day: 10).status == 0)
        #expect(try await leadflow(["run"], day: 25).status == 2)
        #expect(try await leadflow(connect, day: 30, input: "EAAB-kill-backfill-two\n").status == 0)

        fake.now = Self.day(30.5)
        let env = leadflow.environment(at: Self.day(30.5))
        let arguments = leadflow.arguments(["backfill", "--all"])
        let db = try PostgresConnection(conninfo: databaseURL)
        func leadCount() throws -> Int { try db.query("SELECT count(*) FROM leads")[0].int(0) ?? -1 }

        // Killed at each stage's debug point in turn: each kill lands where it names (the
        // point's own line, then SIGKILL; the progress lines show that stage) and commits no
        // lead. Then killed just after a window's commit: that window is in, the others are not.
        let before = try leadCount()
        for point in [DebugKill.extract, DebugKill.archive, DebugKill.copy, DebugKill.commit, DebugKill.committed] {
            let killed = try await runProgram(LeadFlowBinary.path, arguments, environment: env.merging(["LEADFLOW_DEBUG_KILL_AT": point]) { $1 })
            #expect(Killed.byPoint(point, killed), "killed at \(point)? status \(killed.status): \(killed.stderr.suffix(600))")
            #expect(PassStage.reached(in: killed.stderr) == PassStage.of(killPoint: point), "\(point): \(killed.stderr.suffix(600))")
            let windows = try db.query("SELECT count(*) FROM backfill_windows")[0].int(0) ?? -1
            if point == DebugKill.committed {
                #expect(try leadCount() > before, "killed after a commit")
                #expect(windows == 1, "killed after the first window's commit: \(windows) windows recorded")
            } else {
                #expect(try leadCount() == before, "killed at \(point)")
                #expect(windows == 0, "killed at \(point): \(windows) windows recorded")
            }
            try Killed.lapseConnectionLeases(databaseURL)
        }

        // Then at random instants, each round waiting longer. Seeded, so a failure can be
        // replayed; the stages they reached are printed (mostly extraction: a round killed
        // there commits nothing, so the next starts over).
        var generator = SeededGenerator.fromEnvironment()
        let replay = "replay with LEADFLOW_TEST_SEED=\(generator.seed)"
        print("aKilledBackfillResumes: \(replay)")
        var reached: [String] = []
        for round in 0..<8 {
            let process = try SpawnedProcess(LeadFlowBinary.path, arguments, environment: env)
            let delay = Double.random(in: 0.05...(0.2 + Double(round) * 0.15), using: &generator)
            try await Task.sleep(for: .seconds(delay))
            kill(process.processIdentifier, SIGKILL)
            let ended = await process.exit()
            // A round that ended before its kill came killed nothing: it says "finished", not a stage.
            #expect(ended.status == Killed.status || ended.status == 0, "round \(round): \(replay): \(ended.stderr.suffix(600))")
            reached.append((ended.status == Killed.status ? "\(PassStage.reached(in: ended.stderr))" : "finished") + String(format: " at %.2f s", delay))
            try Killed.lapseConnectionLeases(databaseURL)
        }
        print("aKilledBackfillResumes: stages reached by the kills: \(reached.joined(separator: ", ")); \(replay)")
        #expect(reached.contains { !$0.hasPrefix("finished") }, "no round was killed before it finished: \(replay)")
        let final = try await runProgram(LeadFlowBinary.path, arguments, environment: env)
        #expect(final.status == 0, "\(replay): \(final.stderr)")

        // Identical to an uninterrupted backfill: the leads before the void, and the void
        // period widened by the overlap (10 minutes), each once; the period marked backfilled.
        let overlap: TimeInterval = 600
        let expected = Set(fake.allVisibleLeads().filter {
            $0.createdAt! < Self.day(10) || ($0.createdAt! >= Self.day(20).addingTimeInterval(-overlap) && $0.createdAt! < Self.day(30).addingTimeInterval(overlap))
        }.map(\.id))
        let loaded = Set(try db.query("SELECT lead_id FROM leads").all.map { try $0.string(0)! })
        #expect(loaded == expected, "\(replay)")
        #expect(try db.query("SELECT count(*) = count(DISTINCT lead_id) FROM leads")[0].bool(0) == true)
        #expect(try db.query("SELECT backfilled_at IS NOT NULL FROM void_periods")[0].bool(0) == true)
        #expect(try db.query("SELECT count(*) FROM backfill_windows")[0].int(0) == 4)
        #expect(try db.query("SELECT count(*) FROM leads l LEFT JOIN archives a ON a.id = l.archive_id WHERE a.id IS NULL")[0].int(0) == 0)
        // The scheduled watermarks did not move: they still stand where the day-10 run left them.
        for row in try db.query("SELECT form_id, high_water FROM watermarks").all {
            let newest = fake.leads(ofForm: try row.string(0)!).map { $0.createdAt! }.filter { $0 < Self.day(10) }.max()
            #expect(try row.date(1) == newest)
        }
    }
}

import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// Three `leadflow run` processes on one Postgres, 50 connections (the Graph fake answers
/// every call after 10 ms, so the workers overlap). Postgres alone coordinates them.
@Suite(.serialized) struct WorkerTests {
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!
    static let pages = (1001...1050).map(String.init)

    let fake: GraphFake
    let home: URL
    let url: String
    let leadflow: LeadFlowCLI

    init() async throws {
        var scenario = GraphScenario(
            pages: Self.pages.map { page in
                .init(id: page, name: "Page \(page)", forms: (0..<2).map { f in
                    .init(id: "\(page)\(f)", name: "Form \(f)",
                          generate: .init(count: 30, start: "2026-11-01T00:00:00+0000", spacingSeconds: 3_600,
                                          firstID: Int64(page)! * 1_000_000 + Int64(f) * 1_000))
                })
            },
            tokens: [.init(token: "EAAB-workers-token", pages: Self.pages)])
        scenario.tokens[0].type = "USER"
        scenario.latencyMilliseconds = 10
        fake = try GraphFake(scenario: scenario, now: Self.now)
        home = try Repository.temporaryFolder("workers")
        url = try TestDatabase.create("workers")
        leadflow = LeadFlowCLI(databaseURL: url, home: home, fake: fake, now: Self.now)
        for page in Self.pages {
            let connected = try await leadflow(["connect", "--instance", "acme", "--page", page, "--name", "acme-\(page)"],
                                               input: "EAAB-workers-token\n")
            #expect(connected.status == 0, "\(connected.stderr)")
        }
    }

    /// A `leadflow run` in the background.
    func startWorker(_ id: String, _ extra: [String] = []) throws -> SpawnedProcess {
        try SpawnedProcess(LeadFlowBinary.path, ["run", "--worker-id", id, "--connections-at-once", "2"] + extra, environment: leadflow.environment())
    }

    func waitAll(_ workers: [SpawnedProcess]) async -> [Int32] {
        var statuses: [Int32] = []
        for worker in workers { statuses.append(await worker.exit().status) }
        return statuses
    }

    func logs(_ workers: [SpawnedProcess]) async -> String {
        var texts: [String] = []
        for worker in workers { texts.append(await log(worker)) }
        return texts.joined(separator: "\n---\n")
    }

    func log(_ worker: SpawnedProcess) async -> String {
        await worker.exit().stderr
    }

    func expectExactlyTheFakesLeads(_ db: PostgresConnection) throws {
        let ids = try db.query("SELECT lead_id FROM leads").all.map { try $0.string(0)! }
        #expect(ids.count == Set(ids).count, "a lead was loaded twice")
        #expect(Set(ids) == Set(fake.allVisibleLeads().map(\.id)))
        #expect(ids.count == 50 * 2 * 30)
    }

    /// Requests for each Page's forms, from the fake's log: one per pass over the connection.
    func formListings() -> [String: Int] {
        var counts: [String: Int] = [:]
        for record in fake.requestLog {
            guard let page = Self.pages.first(where: { record.path.hasSuffix("/\($0)/leadgen_forms") }) else { continue }
            counts[page, default: 0] += 1
        }
        return counts
    }

    @Test func threeWorkersProcessEveryConnectionExactlyOncePerRound() async throws {
        let db = try PostgresConnection(conninfo: url)
        for round in 1...2 {
            let workers = try ["w1", "w2", "w3"].map { try startWorker($0) }
            let statuses = await waitAll(workers)
            let text = await logs(workers)
            #expect(statuses == [0, 0, 0], "\(text.suffix(3000))")
            // One round per start of the three, every connection in it claimed once and done.
            let rounds = try db.query("SELECT count(*), count(closed_at) FROM work_rounds")[0]
            #expect(try rounds.int(0) == round && rounds.int(1) == round)
            let items = try db.query("""
                SELECT count(*), count(*) FILTER (WHERE state = 'done' AND claims = 1), count(DISTINCT worker_id)
                FROM work_items WHERE round_id = (SELECT max(id) FROM work_rounds)
                """)[0]
            #expect(try items.int(0) == 50 && items.int(1) == 50)
            #expect(try items.int(2)! >= 2, "the work was not shared")
            // Graph saw each Page's forms listed exactly once per round.
            #expect(formListings() == Dictionary(uniqueKeysWithValues: Self.pages.map { ($0, round) }))
            try expectExactlyTheFakesLeads(db)
        }
        // The second round found nothing new: every lead still first loaded by the first round's runs.
        #expect(try db.query("SELECT count(*) FROM leads WHERE first_run_id <> last_run_id")[0].int(0) == 0)
    }

    /// SIGKILL one worker while it holds connections: the others take them over (a dead
    /// process on the same host is seen at once; on another host its lease would end), and
    /// every lead is loaded exactly once.
    @Test func aKilledWorkersConnectionsGoToTheOthers() async throws {
        let db = try PostgresConnection(conninfo: url)
        let victim = try startWorker("victim")
        // Let it get going: it has finished a connection and holds others.
        var heldAtDeath: [Int64] = []
        for _ in 0..<600 {
            let done = try db.query("SELECT count(*) FROM work_items WHERE worker_id = 'victim' AND state = 'done'")[0].int(0) ?? 0
            heldAtDeath = try db.query("SELECT connection_id FROM work_items WHERE worker_id = 'victim' AND state = 'claimed'")
                .all.map { Int64(try $0.int(0)!) }
            if done >= 2 && !heldAtDeath.isEmpty { break }
            try await Task.sleep(for: .seconds(0.02))
        }
        let others = try ["w1", "w2"].map { try startWorker($0) }
        kill(victim.processIdentifier, SIGKILL)
        await victim.exit()
        #expect(!heldAtDeath.isEmpty, "the victim held nothing when it was killed")
        let othersExited = await waitAll(others)
        let othersLog = await logs(others)
        #expect(othersExited == [0, 0], "\(othersLog.suffix(3000))")

        let items = try db.query("SELECT count(*), count(*) FILTER (WHERE state = 'done') FROM work_items")[0]
        #expect(try items.int(0) == 50 && items.int(1) == 50)
        #expect(try db.query("SELECT count(*) FROM work_rounds WHERE closed_at IS NULL")[0].int(0) == 0)
        for connection in heldAtDeath {
            let row = try db.query("SELECT worker_id, claims FROM work_items WHERE connection_id = $1", [connection])[0]
            #expect(try ["w1", "w2"].contains(row.string(0) ?? "") && row.int(1)! >= 2)
        }
        try expectExactlyTheFakesLeads(db)
    }

    /// A worker frozen (SIGSTOP) during a connection's extraction is alive, so only its
    /// lease can free the connection: after 5 s another worker takes it over and loads it in
    /// the same round (with a session advisory lock, the frozen session kept it and the
    /// rescuer called it idle). Woken up, the frozen worker cannot commit over it (fence,
    /// or its session ended by the idle-transaction timeout); every lead is loaded once.
    @Test func aWorkerFrozenDuringExtractionLosesItsConnectionToAnotherInTheSameRound() async throws {
        let db = try PostgresConnection(conninfo: url)
        // Slow answers, so the freeze lands while the connection's reads are in flight.
        fake.setLatency(milliseconds: 400)
        let frozen = try startWorker("frozen", ["--lease-seconds", "5", "--connections-at-once", "1"])
        var held: Int64?
        for _ in 0..<3_000 {
            held = try db.query("SELECT connection_id FROM connection_leases WHERE holder = 'frozen' AND lease_until > clock_timestamp()")
                .all.first.map { Int64(try $0.int(0)!) }
            if held != nil { break }
            try await Task.sleep(for: .seconds(0.01))
        }
        kill(frozen.processIdentifier, SIGSTOP)
        fake.setLatency(milliseconds: 10)
        let connection = try #require(held)
        // The freeze landed inside the pass: the connection's lease taken, nothing committed.
        #expect(try db.query("SELECT count(*) FROM leads WHERE connection_id = $1", [connection])[0].int(0) == 0)
        let started = Date()
        let rescuer = try startWorker("rescuer", ["--lease-seconds", "5"])
        let rescued = await waitAll([rescuer])
        let rescuerLog = await log(rescuer)
        #expect(rescued == [0], "\(rescuerLog.suffix(3000))")
        #expect(!rescuerLog.contains("another run is processing it"))
        // It waited for the lease: the frozen worker is alive, so nothing else could free it.
        #expect(Date().timeIntervalSince(started) >= 4)
        #expect(try db.query("SELECT count(*) FROM leads WHERE connection_id = $1", [connection])[0].int(0) == 60,
                "the frozen worker's connection was loaded by the rescuer in the same round")
        kill(frozen.processIdentifier, SIGCONT)
        // Exit 0 (its pass was refused by the fence and reported as taken over) or 1 (its
        // session was ended); never a second copy of a lead.
        let frozenExit = await frozen.exit().status
        let frozenLog = await log(frozen)
        #expect([0, 1].contains(frozenExit), "\(frozenLog.suffix(3000))")
        let row = try db.query("SELECT worker_id, claims, state FROM work_items WHERE connection_id = $1", [connection])[0]
        #expect(try row.string(0) == "rescuer" && row.int(1)! >= 2 && row.string(2) == "done")
        let lease = try db.query("SELECT holder, fence FROM connection_leases WHERE connection_id = $1", [connection])[0]
        #expect(try lease.string(0) == "rescuer" && lease.int(1)! >= 2)
        try expectExactlyTheFakesLeads(db)
    }

    /// A worker alive but stuck (its answer from Graph a minute away) keeps its heartbeat,
    /// but a pass with no progress for three leases stops renewing: its claim and the
    /// connection's lease lapse, and another worker loads the connection in the same round.
    @Test func aWorkerStuckButAliveIsFencedOutAfterThreeLeases() async throws {
        let db = try PostgresConnection(conninfo: url)
        fake.addFault(.init(path: "/1001/leadgen_forms", onRequest: 1, kind: .latency, latencyMilliseconds: 50_000))
        let stuck = try startWorker("stuck", ["--lease-seconds", "5", "--connections-at-once", "1"])
        // The stuck worker holds connection 1 (its Page 1001) once it has taken its lease.
        for _ in 0..<3_000 {
            if try db.query("SELECT 1 FROM connection_leases WHERE holder = 'stuck' AND connection_id = 1").count == 1 { break }
            try await Task.sleep(for: .seconds(0.01))
        }
        let started = Date()
        let rescuer = try startWorker("rescuer", ["--lease-seconds", "5"])
        let rescued = await waitAll([rescuer])
        let rescuerLog = await log(rescuer)
        #expect(rescued == [0], "\(rescuerLog.suffix(3000))")
        // Not before the stall limit (3 × 5 s): a slow pass that makes progress keeps its connection.
        #expect(Date().timeIntervalSince(started) >= 14)
        let row = try db.query("SELECT worker_id, claims, state FROM work_items WHERE connection_id = 1")[0]
        #expect(try row.string(0) == "rescuer" && row.int(1)! >= 2 && row.string(2) == "done")
        #expect(try db.query("SELECT count(*) FROM leads WHERE page_id = '1001'")[0].int(0) == 60)
        kill(stuck.processIdentifier, SIGKILL)
        _ = await stuck.exit()
        try expectExactlyTheFakesLeads(db)
    }
}

import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// What happens to `leadflow run` when Graph or the database fails under it. The database
/// at the worst moment:
/// after a form's COPY and upsert, before its COMMIT. The run is held there by a lock on
/// `watermarks` (the last statement of the window's transaction; SHARE mode lets reads go on) taken from another
/// session; then it is killed, its backend terminated, or Postgres stopped with
/// `-m immediate`. Each time: no row of the window is visible, no watermark moved, and
/// a rerun ends with every lead loaded exactly once.
@Suite(.serialized) struct RunFaultTests {
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!

    let fake: GraphFake
    let home: URL

    init() throws {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Page 1001", forms: (0..<2).map { f in
                .init(id: "1001\(f)", name: "Form \(f)", generate: .init(count: 2_000, start: "2026-10-01T00:00:00+0000", spacingSeconds: 600))
            })],
            tokens: [.init(token: "EAAB-dbfault-token", pages: ["1001"])])
        scenario.tokens[0].type = "USER"
        // Graph's next URLs name another host here: a client that followed them would fail.
        scenario.nextURLHost = "graph.evil.example"
        fake = try GraphFake(scenario: scenario, now: Self.now)
        home = try Repository.temporaryFolder("dbfault")
    }

    /// The binary against one test's database (each test has its own; one crashes its cluster).
    func leadflow(_ databaseURL: String) -> LeadFlowCLI {
        LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, now: Self.now)
    }

    /// Starts `leadflow run` and returns once its first window's transaction waits on the
    /// watermark lock `holder` holds, with the run's process and its backend's pid.
    func runHeldBeforeCommit(_ databaseURL: String, holder: PostgresConnection) async throws -> (Process, Pipe, Int) {
        // SHARE: reading a watermark goes on, writing one waits.
        try holder.execute(raw: RawSQL(label: "hold", "BEGIN; LOCK TABLE watermarks IN SHARE MODE"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LeadFlowBinary.path)
        process.arguments = ["run"]
        process.environment = leadflow(databaseURL).environment()
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Another session watches: pg_stat_activity is a snapshot fixed for the holder's transaction.
        let watcher = try PostgresConnection(conninfo: databaseURL)
        for _ in 0..<600 {
            let waiting = try watcher.query("""
                SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO watermarks%'
                """)
            if waiting.count == 1 { return (process, stderr, try waiting[0].int(0)!) }
            try await Task.sleep(for: .seconds(0.05))
        }
        let seen = try watcher.query("SELECT coalesce(string_agg(state || ' ' || coalesce(wait_event_type, '-') || ' ' || left(query, 80), E'\n'), '') FROM pg_stat_activity WHERE datname = current_database()")[0].string(0) ?? ""
        kill(process.processIdentifier, SIGKILL)
        try holder.execute(raw: RawSQL(label: "release", "COMMIT"))
        await process.exited()
        throw NeverHeld(seen: seen + "\n" + String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).suffix(1500))
    }

    struct NeverHeld: Error, CustomStringConvertible {
        let seen: String
        var description: String { "the run never reached the watermark's update; the database saw: \(seen)" }
    }

    func expectNothingCommitted(_ db: PostgresConnection) throws {
        #expect(try db.query("SELECT count(*) FROM leads")[0].int(0) == 0)
        #expect(try db.query("SELECT count(*) FROM watermarks")[0].int(0) == 0)
    }

    func expectExactlyTheFakesLeads(_ db: PostgresConnection) throws {
        let ids = Set(try db.query("SELECT lead_id FROM leads").all.map { try $0.string(0)! })
        #expect(ids == Set(fake.allVisibleLeads().filter { $0.createdAt! < Self.now }.map(\.id)))
        #expect(try db.query("SELECT count(*) = count(DISTINCT lead_id) FROM leads")[0].bool(0) == true)
    }

    func connect(_ databaseURL: String) async throws {
        let result = try await leadflow(databaseURL)(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-1001"],
                                                     input: "EAAB-dbfault-token\n")
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func killedBetweenCopyAndCommitNothingIsVisibleAndARerunLoadsAll() async throws {
        let url = try TestDatabase.create("killcommit")
        try await connect(url)
        let holder = try PostgresConnection(conninfo: url)
        let (process, _, _) = try await runHeldBeforeCommit(url, holder: holder)
        kill(process.processIdentifier, SIGKILL)
        await process.exited()
        try holder.execute(raw: RawSQL(label: "release", "COMMIT"))
        try expectNothingCommitted(holder)

        let rerun = try await leadflow(url)(["run"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        try expectExactlyTheFakesLeads(holder)
    }

    @Test func aBackendTerminatedBeforeCommitFailsClearlyAndARerunLoadsAll() async throws {
        let url = try TestDatabase.create("terminate")
        try await connect(url)
        let holder = try PostgresConnection(conninfo: url)
        let (process, stderr, backend) = try await runHeldBeforeCommit(url, holder: holder)
        #expect(try holder.query("SELECT pg_terminate_backend($1)", [backend])[0].bool(0) == true)
        await process.exited()
        let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try holder.execute(raw: RawSQL(label: "release", "COMMIT"))
        #expect(process.terminationStatus == 1)
        #expect(message.contains("leadflow: postgres"), "\(message)")
        try expectNothingCommitted(holder)

        let rerun = try await leadflow(url)(["run"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        try expectExactlyTheFakesLeads(holder)
    }

    @Test func postgresStoppedImmediatelyMidLoadThenRestarted() async throws {
        // A cluster of this test's own, to crash.
        let clusterHome = try Repository.temporaryFolder("crash")
        var cluster: EmbeddedCluster? = try EmbeddedCluster.start(home: clusterHome)
        cluster?.keepRunning = true
        let data = cluster!.dataDirectory
        defer {
            try? EmbeddedCluster.start(home: clusterHome).stop()
            try? FileManager.default.removeItem(at: data)
        }
        let url = cluster!.conninfo
        try await connect(url)
        var holder: PostgresConnection? = try PostgresConnection(conninfo: url)
        let (process, stderr, _) = try await runHeldBeforeCommit(url, holder: holder!)
        try cluster!.stop(immediately: true)
        await process.exited()
        let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 1)
        #expect(message.contains("leadflow: postgres"), "\(message)")
        holder = nil
        cluster = nil

        // Restarted (crash recovery): the window's transaction never happened.
        let restarted = try EmbeddedCluster.start(home: clusterHome)
        restarted.keepRunning = true
        let db = try PostgresConnection(conninfo: url)
        try expectNothingCommitted(db)
        let rerun = try await leadflow(url)(["run"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        try expectExactlyTheFakesLeads(db)
    }

    /// Graph faults at run level: a 500 on a page, a truncated body, a rate limit with its
    /// usage header, an invalid cursor that never heals, a `next` URL on another host. The
    /// transient ones are retried; the form whose cursor stays invalid fails alone, its
    /// watermark does not move and the run exits 1; no request goes anywhere but the fake;
    /// a rerun once Graph is well again ends with T = L.
    @Test func graphFaultsAreRetriedOrFailOneFormAndARerunLoadsAll() async throws {
        let url = try TestDatabase.create("graphfaults")
        try await connect(url)
        fake.addFault(.init(path: "10010/leads", onRequest: 3, kind: .http500))
        fake.addFault(.init(path: "10010/leads", onRequest: 5, kind: .truncate))
        fake.addFault(.init(path: "10010/leads", onRequest: 7, kind: .graphError, fixture: "app_rate_limit_4", status: 400, regainAccessMinutes: 0))
        fake.addFault(.init(path: "10011/leads", onRequest: 2, times: 1_000, kind: .graphError, fixture: "invalid_cursor_100", status: 400))
        let first = try await leadflow(url)(["run"])
        #expect(first.status == 1, "\(first.stderr)")
        #expect(first.stderr.contains("partial: forms 10011 failed"), "\(first.stderr)")
        let db = try PostgresConnection(conninfo: url)
        #expect(try db.query("SELECT array_agg(form_id) FROM watermarks")[0].string(0) == "{10010}", "the failed form's watermark stays")
        let form0 = Set(fake.leads(ofForm: "10010").filter { $0.createdAt! < Self.now }.map(\.id))
        #expect(Set(try db.query("SELECT lead_id FROM leads WHERE form_id = '10010'").all.map { try $0.string(0)! }) == form0)
        // Every request reached the fake (it never followed a next URL: they carry the token and could name any host).
        #expect(fake.requestLog.allSatisfy { $0.path.hasPrefix("/v25.0/") })

        fake.clearFaults()
        let rerun = try await leadflow(url)(["run"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        try expectExactlyTheFakesLeads(db)
    }

    /// A permission revoked in the middle of a run: the connection goes void at the run's
    /// instant with cause permission_revoked, the form committed before it stays, the run
    /// asks nothing more of Graph; after reauthentication the backfill brings the rest: T = L.
    @Test func aPermissionRevokedMidRunVoidsTheConnectionAndABackfillHeals() async throws {
        let url = try TestDatabase.create("revoked")
        try await connect(url)
        // Forms are read two at a time: the second form's first page meets the revocation.
        fake.addFault(.init(path: "10011/leads", onRequest: 1, times: 1_000, kind: .graphError, fixture: "permission_200", status: 403))
        let first = try await leadflow(url)(["run"])
        #expect(first.status == 2, "\(first.stderr)")
        #expect(first.stderr.contains("void (permission_revoked)"))
        let db = try PostgresConnection(conninfo: url)
        let period = try db.query("SELECT cause, started_at FROM void_periods WHERE ended_at IS NULL")
        #expect(period.count == 1)
        #expect(try period[0].string(0) == "permission_revoked")
        #expect(try period[0].date(1) == Self.now, "void from the run's own instant")
        let requestsAtVoid = fake.requestLog.count
        // A second run asks Graph for no lead while the connection is void.
        #expect(try await leadflow(url)(["run"]).status == 2)
        #expect(!fake.requestLog[requestsAtVoid...].contains { $0.path.hasSuffix("/leads") })

        fake.clearFaults()
        // An hour later for the binary only: the fake's clock stays where it is.
        let later = ["LEADFLOW_NOW": UTCTime.iso8601(Self.now.addingTimeInterval(3_600))]
        let reconnect = try await leadflow(url)(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-1001"],
                                                input: "EAAB-dbfault-token\n", extra: later)
        #expect(reconnect.status == 0, "\(reconnect.stderr)")
        let healed = try await leadflow(url)(["run"], extra: later)
        #expect(healed.status == 0, "\(healed.stderr)")
        #expect(healed.stderr.contains("backfill of void period 1"))
        try expectExactlyTheFakesLeads(db)
        #expect(try db.query("SELECT backfilled_at IS NOT NULL FROM void_periods")[0].bool(0) == true)
    }
}

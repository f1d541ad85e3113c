import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// What killed runs leave under LEADFLOW_HOME, found again: an archive published whose row
/// never committed, the `.partial-*` file of a write killed half way, the spool folder of a
/// run whose host never comes back; and archives an erasure cannot reach. Each through the
/// built binary, on real Postgres and real files.
@Suite(.serialized) struct OrphanTests {
    static let day = TestDays(zero: "2026-03-02T09:00:00Z")

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let leadflow: LeadFlowCLI
    let db: PostgresConnection

    init() throws {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme", forms: [
                .init(id: "2001", name: "Webinar", generate: .init(count: 80, start: "2026-03-02T09:30:00+0000", spacingSeconds: 10_800)),
            ])],
            tokens: [.init(token: "EAAB-orphan-token", pages: ["1001"])])
        scenario.tokens[0].type = "USER"
        fake = try GraphFake(scenario: scenario, now: Self.day(0))
        databaseURL = try TestDatabase.create("orphans")
        home = try Repository.temporaryFolder("orphans")
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, days: Self.day)
        db = try PostgresConnection(conninfo: databaseURL)
    }

    func connect() async throws {
        let result = try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 0,
                                        input: "EAAB-orphan-token\n")
        #expect(result.status == 0, "\(result.stderr)")
    }

    func email(of lead: GraphLead) throws -> String {
        try #require(lead.fieldData.first { $0.name == "email" }?.values.first).trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// The fake's leads created in [from, to) days, by id.
    func leads(from: Double, to: Double) -> [GraphLead] {
        fake.leads(ofForm: "2001").filter { $0.createdAt! >= Self.day(from) && $0.createdAt! < Self.day(to) }.sorted { $0.id < $1.id }
    }

    func archivePath(run: Int) throws -> String {
        try db.query("SELECT path FROM archives WHERE run_id = $1 AND superseded_by IS NULL", [run])[0].string(0)!
    }

    /// Killed after its archive is published and before the archive's row commits (held
    /// there by a lock on `archives` another session takes, then SIGKILL), then the person
    /// whose lead only that archive and the run's spool hold is erased: no file under
    /// LEADFLOW_HOME holds them any more, and the next run loads everyone else.
    @Test func killedBetweenTheArchiveAndItsRowThenErasedThePersonIsInNoFile() async throws {
        try await connect()
        #expect(try await leadflow(["run"], day: 5).status == 0)

        let holder = try PostgresConnection(conninfo: databaseURL)
        try holder.execute(raw: RawSQL(label: "hold", "BEGIN; LOCK TABLE archives IN SHARE MODE"))
        fake.now = Self.day(9)
        let run = try SpawnedProcess(LeadFlowBinary.path, ["run"], environment: leadflow.environment(at: Self.day(9)))
        let watcher = try PostgresConnection(conninfo: databaseURL)
        let held = try await watcher.waitForLockWait(like: "%INSERT INTO archives%")
        try #require(held, "the run never reached the archive's row: \(run.stderrSoFar)")
        // The instant is the one named: the archive is on disk under its final name, its row is not.
        let runID = try #require(try db.query("SELECT max(id) FROM runs")[0].int(0))
        let orphan = "archives/acme/1001/run-\(runID).tar.zst"
        #expect(FileManager.default.fileExists(atPath: home.appendingPathComponent(orphan).path))
        #expect(FileManager.default.fileExists(atPath: home.appendingPathComponent("spool/run-\(runID)").path))
        kill(run.processIdentifier, SIGKILL)
        await run.exit()
        // Postgres notices a dead client only when it next talks to it: the waiting INSERT
        // would still run (and commit) once the lock is released. End it as the crash would.
        try await watcher.endWaitingBackends(like: "%INSERT INTO archives%")
        try holder.execute(raw: RawSQL(label: "release", "ROLLBACK"))
        #expect(try db.query("SELECT count(*) FROM archives WHERE path = $1", [orphan])[0].int(0) == 0)

        // Created after the day-5 run's window: only the orphan archive and the spool hold them.
        let person = try #require(leads(from: 5.5, to: 8.5).first)
        let needles = [try email(of: person), person.id]
        let before = try await HomeFiles.holding(needles, under: home)
        #expect(before.contains(orphan) && before.contains { $0.hasPrefix("spool/run-\(runID)/") }, "\(before)")

        let erase = try await leadflow(["erase", "--email"], day: 9.5, input: try email(of: person) + "\n")
        #expect(erase.status == 0, "\(erase.stderr)")
        #expect(erase.stderr.contains("killed runs or erasures had left"), "\(erase.stderr)")
        #expect(try await HomeFiles.holding(needles, under: home) == [])
        #expect(!FileManager.default.fileExists(atPath: home.appendingPathComponent(orphan).path))
        #expect(!FileManager.default.fileExists(atPath: home.appendingPathComponent("spool/run-\(runID)").path))
        #expect(try db.query("SELECT status FROM runs WHERE id = $1", [runID])[0].string(0) == "abandoned")

        // The next run reads the window again: everyone but the person, once each.
        let next = try await leadflow(["run"], day: 10)
        #expect(next.status == 0, "\(next.stderr)")
        let loaded = Set(try db.query("SELECT lead_id FROM leads").all.map { try $0.string(0)! })
        #expect(loaded == Set(leads(from: 0, to: 10).map(\.id)).subtracting([person.id]))
        #expect(try await HomeFiles.holding(needles, under: home) == [])
        let verify = try await leadflow(["archive", "verify", "--all"], day: 10)
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    /// A run killed while writing its archive (every member in the temporary file, not yet
    /// renamed: `LEADFLOW_DEBUG_KILL_AT`, a debug build's switch) on a host that never comes
    /// back: once its lease has ended, the next run on any host removes its `.partial-*`
    /// file and its spool folder, marks it abandoned, and loads everything.
    @Test func theNextRunRemovesAStalePartialAndTheSpoolOfARunWhoseLeaseEnded() async throws {
        try await connect()
        let killed = try await leadflow(["run", "--lease-seconds", "5"], day: 5, extra: ["LEADFLOW_DEBUG_KILL_AT": DebugKill.archive])
        #expect(killed.status == 128 + SIGKILL, "\(killed.stderr)")
        let runID = try #require(try db.query("SELECT id FROM runs WHERE status = 'running'")[0].int(0))
        let folder = home.appendingPathComponent("archives/acme/1001")
        let partials = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix(".run-\(runID).tar.zst.partial-") }
        #expect(partials.count == 1)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("run-\(runID).tar.zst").path))
        let spool = home.appendingPathComponent("spool/run-\(runID)")
        #expect(FileManager.default.fileExists(atPath: spool.path))

        // Its host never comes back (another pod on the shared volume: its pid means nothing
        // here); its lease, renewed by nobody, ends.
        try db.query("UPDATE runs SET host = 'pod-gone-7' WHERE id = $1", [runID])
        var lapsed = false
        for _ in 0..<600 where !lapsed {
            lapsed = try db.query("SELECT lease_until < clock_timestamp() FROM runs WHERE id = $1", [runID])[0].bool(0) == true
            if !lapsed { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(lapsed)

        let next = try await leadflow(["run"], day: 5)
        #expect(next.status == 0, "\(next.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".partial-") } == [])
        #expect(!FileManager.default.fileExists(atPath: spool.path))
        #expect(try db.query("SELECT status, swept_at IS NOT NULL FROM runs WHERE id = $1", [runID]).all.map {
            [try $0.string(0)!, try $0.string(1)!]
        } == [["abandoned", "t"]])
        let loaded = Set(try db.query("SELECT lead_id FROM leads").all.map { try $0.string(0)! })
        #expect(loaded == Set(leads(from: 0, to: 5).map(\.id)))
        // Only the finished run's archive is left, and it is the one its rows point at.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == [(try archivePath(run: try #require(
            try db.query("SELECT max(id) FROM runs")[0].int(0))) as NSString).lastPathComponent])
    }

    /// An archive erase cannot read here (on another host's disk, then damaged) does not
    /// stop it: the rows go, the archive is listed as pending (exit 2), and a later erase or
    /// `archive verify --repair`, once the file is readable, takes the person out of it.
    @Test func anUnreachableArchiveLeavesTheErasurePendingUntilAHostThatReadsItFinishesIt() async throws {
        try await connect()
        #expect(try await leadflow(["run"], day: 5).status == 0)
        #expect(try await leadflow(["run"], day: 9).status == 0)
        let first = try archivePath(run: 1)
        let p = try #require(leads(from: 0, to: 4.5).first)          // only in the first archive
        let later = leads(from: 5.5, to: 8.5)                          // only in the second
        let q = later[0], r = later[1]
        let elsewhere = try Repository.temporaryFolder("otherhost").appendingPathComponent("archive")

        // The first archive is on another host's disk.
        try FileManager.default.moveItem(at: home.appendingPathComponent(first), to: elsewhere)
        let erasedP = try await leadflow(["erase", "--email"], day: 9.5, input: try email(of: p) + "\n")
        #expect(erasedP.status == 2, "\(erasedP.stderr)")
        #expect(erasedP.stderr.contains("erased: 1 lead"), "\(erasedP.stderr)")
        #expect(erasedP.stderr.contains("1 archive still holds erased people's raw leads"), "\(erasedP.stderr)")
        #expect(erasedP.stderr.contains(first) && erasedP.stderr.contains("not on host"), "\(erasedP.stderr)")
        #expect(!erasedP.stderr.lowercased().contains(try email(of: p)), "the address is never printed")
        #expect(try db.query("SELECT count(*) FROM leads WHERE lead_id = $1", [p.id])[0].int(0) == 0)
        #expect(try db.query("SELECT count(*) FROM erasure_pending")[0].int(0) == 1)

        // Back on this host: the next erasure (of someone else) finishes the pending one.
        try FileManager.default.moveItem(at: elsewhere, to: home.appendingPathComponent(first))
        let erasedQ = try await leadflow(["erase", "--lead", q.id], day: 9.6)
        #expect(erasedQ.status == 0, "\(erasedQ.stderr)")
        #expect(try db.query("SELECT count(*) FROM erasure_pending")[0].int(0) == 0)
        #expect(try await HomeFiles.holding([try email(of: p), p.id, q.id], under: home) == [])

        // The second archive, now damaged: unreadable here, pending again.
        let second = try archivePath(run: 2)
        let intact = try Data(contentsOf: home.appendingPathComponent(second))
        try Data("not an archive".utf8).write(to: home.appendingPathComponent(second))
        let erasedR = try await leadflow(["erase", "--lead", r.id], day: 9.7)
        #expect(erasedR.status == 2, "\(erasedR.stderr)")
        #expect(erasedR.stderr.contains(second) && erasedR.stderr.contains("unreadable on host"), "\(erasedR.stderr)")
        #expect(try db.query("SELECT count(*) FROM leads WHERE lead_id = $1", [r.id])[0].int(0) == 0)

        // Repaired: archive verify --repair finishes it, and every archive verifies.
        try intact.write(to: home.appendingPathComponent(second))
        let repair = try await leadflow(["archive", "verify", "--repair"], day: 9.8)
        #expect(repair.status == 0, "\(repair.stderr)")
        #expect(repair.stderr.contains("1 raw lead of erased people removed from 1 pending archive"), "\(repair.stderr)")
        #expect(try db.query("SELECT count(*) FROM erasure_pending")[0].int(0) == 0)
        #expect(try await HomeFiles.holding([try email(of: p), p.id, q.id, r.id], under: home) == [])
        let loaded = Set(try db.query("SELECT lead_id FROM leads").all.map { try $0.string(0)! })
        #expect(loaded == Set(leads(from: 0, to: 9).map(\.id)).subtracting([p.id, q.id, r.id]))
    }
}

import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// Keeping LEADFLOW_HOME and the run tables from growing with time: a pass that reads
/// nothing new writes no archive, and `archive prune` and `runs prune` remove what nothing
/// needs while the gap report, `status` and erasure say and do exactly what they did before.
@Suite(.serialized) struct TidyTests {
    static let day = TestDays(zero: "2026-03-02T09:00:00Z")

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let leadflow: LeadFlowCLI

    init() throws {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme Analytics", forms: [
                .init(id: "2001", name: "Webinar", generate: .init(count: 200, start: "2026-03-02T09:30:00+0000", spacingSeconds: 21_600)),
                .init(id: "2002", name: "Demo", generate: .init(count: 100, start: "2026-03-02T10:00:00+0000", spacingSeconds: 43_200)),
            ])],
            // The first user's data access ends on day 20: the connection goes void until the
            // second user reauthenticates on day 30.
            tokens: [.user("EAAB-tidy-user-one", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(0))),
                     .user("EAAB-tidy-user-two", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(30)))])
        scenario.tokens[0].dataAccessExpiresAt = UTCTime.iso8601(Self.day(20))
        fake = try GraphFake(scenario: scenario, now: Self.day(0))
        databaseURL = try TestDatabase.create("tidy")
        home = try Repository.temporaryFolder("tidy")
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, days: Self.day)
    }

    /// Every archive file under LEADFLOW_HOME.
    func archiveFiles() throws -> Set<String> {
        let root = home.appendingPathComponent("archives")
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        return Set(walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".tar.zst") }.map { "archives/" + $0 })
    }

    func db() throws -> PostgresConnection { try PostgresConnection(conninfo: databaseURL) }

    @Test func aRerunWithNothingNewWritesNoArchive() async throws {
        #expect(try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 0,
                                   input: "EAAB-tidy-user-one\n").status == 0)
        let first = try await leadflow(["run", "--json"], day: 5)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try archiveFiles().count == 1)
        let archiveRows = try db().query("SELECT count(*) FROM archives")[0].int(0)

        // Nothing new since: the pass re-reads the overlap (the newest lead is always in it),
        // finds every lead loaded already, byte for byte, and writes nothing.
        for n in [5.001, 5.002] {
            let rerun = try await leadflow(["run", "--json"], day: n)
            #expect(rerun.status == 0, "\(rerun.stderr)")
            let summary = try #require(try JSONSerialization.jsonObject(with: Data(rerun.stdout.utf8)) as? [String: Any])
            let pass = try #require((summary["connections"] as? [[String: Any]])?.first)
            #expect(pass["archive"] == nil, "\(pass)")
            #expect((pass["unchanged"] as? Int ?? 0) >= 1, "the overlap was re-read: \(pass)")
            #expect(pass["inserted"] as? Int == 0 && pass["updated"] as? Int == 0)
        }
        #expect(try archiveFiles().count == 1)
        #expect(try db().query("SELECT count(*) FROM archives")[0].int(0) == archiveRows)

        // A lead that changed in Facebook is new: that pass archives and updates it.
        let changed = try #require(fake.leads(ofForm: "2001").first)
        fake.replaceLead(GraphLead(id: changed.id, createdTime: changed.createdTime,
                                   fieldData: [.init(name: "email", values: ["changed@example.com"])]), inForm: "2001")
        let update = try await leadflow(["run", "--json"], day: 5.003)
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(update.stdout.utf8)) as? [String: Any])
        #expect((summary["totals"] as? [String: Any])?["updated"] as? Int == 1, "\(update.stdout)")
        #expect(try archiveFiles().count == 2)
    }

    @Test func pruningKeepsWhatTheGapReportStatusAndErasureNeed() async throws {
        #expect(try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 0,
                                   input: "EAAB-tidy-user-one\n").status == 0)
        #expect(try await leadflow(["run"], day: 5).status == 0)
        // A lead nobody can reach: rejected, never loaded; its archive must stay.
        fake.addLeads([GraphLead(id: "999000001", createdTime: UTCTime.iso8601(Self.day(8)).replacingOccurrences(of: "Z", with: "+0000"),
                                 fieldData: [.init(name: "full_name", values: ["Nobody Reachable"])])], toForm: "2001")
        #expect(try await leadflow(["run"], day: 10).status == 2)
        // Facebook's counters move while no run loads anything: the gap report reads them
        // from snapshots of runs that wrote nothing else.
        fake.setExpiredLeadsCount(3, forForm: "2001")
        #expect(try await leadflow(["run"], day: 10.01).status == 0)
        #expect(try await leadflow(["run"], day: 10.02).status == 0)
        fake.setExpiredLeadsCount(8, forForm: "2001")
        #expect(try await leadflow(["run"], day: 25).status == 2, "data access ended on day 20: void")
        #expect(try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 30,
                                   input: "EAAB-tidy-user-two\n").status == 0)
        #expect(try await leadflow(["run"], day: 30.5).status == 0, "the automatic backfill")
        #expect(try await leadflow(["run"], day: 31).status == 0)
        #expect(try await leadflow(["run"], day: 31.001).status == 0)
        #expect(try await leadflow(["run"], day: 31.002).status == 0)

        let pruneDay = 40.0
        let report = try await leadflow(["gaps", "--format", "json"], day: pruneDay)
        #expect(report.status == 0)
        #expect(report.stdout.contains("\"lost\" : 5"), "the rise of expired_leads_count across the period: \(report.stdout)")
        let table = try await leadflow(["gaps"], day: pruneDay).stdout
        let status = try await leadflow(["status", "--json"], day: pruneDay).stdout
        let filesBefore = try archiveFiles()
        let rejectionArchive = try #require(try db().query("""
            SELECT a.path FROM lead_rejections x JOIN archives a ON a.id = x.archive_id WHERE x.lead_id = '999000001'
            """).all.first?.string(0))
        let runsBefore = try db().query("SELECT count(*) FROM runs")[0].int(0) ?? 0

        // A dry run changes nothing.
        let dry = try await leadflow(["archive", "prune", "--older-than", "1", "--dry-run", "--json"], day: pruneDay)
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(try archiveFiles() == filesBefore)
        let dryRuns = try await leadflow(["runs", "prune", "--older-than", "1", "--dry-run"], day: pruneDay)
        #expect(dryRuns.status == 0, "\(dryRuns.stderr)")
        #expect(try db().query("SELECT count(*) FROM runs")[0].int(0) == runsBefore)

        let pruned = try await leadflow(["archive", "prune", "--older-than", "1", "--json"], day: pruneDay)
        #expect(pruned.status == 0, "\(pruned.stderr)")
        let outcome = try #require(try JSONSerialization.jsonObject(with: Data(pruned.stdout.utf8)) as? [String: Any])
        #expect(outcome["kept"] as? Int == 1)
        #expect(outcome["removed"] as? Int == filesBefore.count - 1)
        #expect(try archiveFiles() == [rejectionArchive], "only the archive of the rejected lead never loaded is left")
        #expect(try db().query("SELECT count(*) FROM archives WHERE pruned_at IS NULL")[0].int(0) == 1)
        #expect(try db().query("SELECT count(*) FROM leads l LEFT JOIN archives a ON a.id = l.archive_id WHERE a.id IS NULL")[0].int(0) == 0,
                "every lead still names its archive")
        #expect(try await leadflow(["archive", "verify", "--all"], day: pruneDay).status == 0, "pruned archives are not missing ones")

        let runsPruned = try await leadflow(["runs", "prune", "--older-than", "1", "--json"], day: pruneDay)
        #expect(runsPruned.status == 0, "\(runsPruned.stderr)")
        let runOutcome = try #require(try JSONSerialization.jsonObject(with: Data(runsPruned.stdout.utf8)) as? [String: Any])
        let deleted = try #require(runOutcome["runs_deleted"] as? Int)
        #expect(deleted >= 2, "the runs that found nothing new: \(runsPruned.stdout)")
        #expect(try db().query("SELECT count(*) FROM runs")[0].int(0) == runsBefore - deleted)
        #expect(try db().query("""
            SELECT count(*) FROM leads l WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = l.first_run_id)
                                            OR NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = l.last_run_id)
            """)[0].int(0) == 0, "every lead still names the runs that loaded it")
        #expect(try db().query("SELECT kind FROM prunes ORDER BY id").all.map { try $0.string(0) } == ["archives", "runs"])

        // The gap report, the status and its last runs say what they said.
        #expect(try await leadflow(["gaps", "--format", "json"], day: pruneDay).stdout == report.stdout)
        #expect(try await leadflow(["gaps"], day: pruneDay).stdout == table)
        #expect(try await leadflow(["status", "--json"], day: pruneDay).stdout == status)

        // A second prune finds nothing more to do; erasure still works on what is left.
        let again = try await leadflow(["archive", "prune", "--older-than", "1", "--json"], day: pruneDay)
        #expect((try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])?["removed"] as? Int == 0)
        let someone = try #require(try db().query("SELECT email FROM leads WHERE email IS NOT NULL ORDER BY lead_id LIMIT 1").all.first?.string(0))
        let erase = try await leadflow(["erase", "--email"], day: pruneDay, input: someone + "\n")
        #expect(erase.status == 0, "\(erase.stderr)")
        #expect(try db().query("SELECT count(*) FROM leads WHERE email = $1", [someone])[0].int(0) == 0)
    }
}

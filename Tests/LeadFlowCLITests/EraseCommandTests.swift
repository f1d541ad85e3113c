import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// `leadflow erase`: the person leaves the tables and every archive, and stays out through
/// a backfill of the same window.
@Suite(.serialized) struct EraseCommandTests {
    static let day = TestDays(zero: "2026-03-02T09:00:00Z")

    @Test func anErasedPersonLeavesTablesAndArchivesAndABackfillDoesNotBringThemBack() async throws {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme", forms: [
                .init(id: "2001", name: "Webinar", generate: .init(count: 80, start: "2026-03-02T09:30:00+0000", spacingSeconds: 10_800)),
            ])],
            tokens: [.init(token: "EAAB-erase-token", pages: ["1001"])])
        scenario.tokens[0].type = "USER"
        let fake = try GraphFake(scenario: scenario, now: Self.day(0))
        let databaseURL = try TestDatabase.create("erase")
        let home = try Repository.temporaryFolder("erase")
        let leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, days: Self.day)
        #expect(try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 0, input: "EAAB-erase-token\n").status == 0)
        #expect(try await leadflow(["run"], day: 5).status == 0)
        #expect(try await leadflow(["run"], day: 9).status == 0)   // the overlap puts some leads in two archives

        let leads = fake.leads(ofForm: "2001").sorted { $0.id < $1.id }
        let person = leads[20]    // erased by e-mail, written as Facebook sent it
        let other = leads[21]     // erased by lead id
        let email = try #require(person.fieldData.first { $0.name == "email" }?.values.first)
        let normalized = email.trimmingCharacters(in: .whitespaces).lowercased()

        let byEmail = try await leadflow(["erase", "--email"], day: 9.5, input: email + "\n")
        #expect(byEmail.status == 0, "\(byEmail.stderr)")
        #expect(byEmail.stderr.contains("erased: 1 lead and 0 rejections deleted"))
        #expect(!byEmail.stderr.lowercased().contains(normalized), "the address is never printed")
        let byID = try await leadflow(["erase", "--lead", other.id], day: 9.6)
        #expect(byID.status == 0, "\(byID.stderr)")

        let db = try PostgresConnection(conninfo: databaseURL)
        func expectGone() async throws {
            #expect(try db.query("SELECT count(*) FROM leads WHERE lead_id = ANY($1) OR email = $2", [[person.id, other.id], normalized])[0].int(0) == 0)
            // No archive file holds them, and every archive in force verifies.
            let files = (FileManager.default.enumerator(atPath: home.appendingPathComponent("archives").path)?.compactMap { $0 as? String } ?? [])
                .filter { $0.hasSuffix(".tar.zst") }
            #expect(!files.isEmpty)
            for file in files {
                let content = try await runProgram("tar", ["--zstd", "-xOf", home.appendingPathComponent("archives/\(file)").path]).stdout
                #expect(!content.contains(person.id) && !content.contains(other.id), "\(file) still holds an erased lead")
                #expect(!content.lowercased().contains(normalized), "\(file) still holds the address")
            }
            #expect(try db.query("SELECT count(*) FROM archives WHERE superseded_by IS NULL")[0].int(0) == files.count, "superseded files are removed")
            let verify = try await leadflow(["archive", "verify", "--all"], day: 10)
            #expect(verify.status == 0, "\(verify.stderr)")
        }
        try await expectGone()
        // Every other lead is still there, once.
        #expect(try db.query("SELECT count(*) FROM leads")[0].int(0) == leads.filter { $0.createdAt! < Self.day(9) }.count - 2)
        // The tombstones name nobody: neither the address nor its plain SHA-256.
        let tombstones = try db.query("SELECT subject_kind, subject_hash FROM erasures ORDER BY id").all.map { (try $0.string(0)!, try $0.string(1)!) }
        #expect(tombstones.map(\.0) == ["email", "lead_id"])
        let plain = try db.query("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", ["email:" + normalized])[0].string(0)!
        #expect(!tombstones.contains { $0.1 == plain || $0.1.contains("@") })

        // A backfill of the whole window reads them from Facebook again: they stay out.
        let backfill = try await leadflow(["backfill", "--connection", "acme-main", "--since", UTCTime.iso8601(Self.day(0))], day: 10)
        #expect(backfill.status == 0, "\(backfill.stderr)")
        try await expectGone()
        #expect(try db.query("SELECT (counters->>'erased')::int FROM runs WHERE kind = 'backfill'")[0].int(0) == 2)
    }
}

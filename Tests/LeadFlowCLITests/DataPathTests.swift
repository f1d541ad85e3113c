import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// The path of a lead from a Graph page to a row, through the binary: one Page in several
/// instances (each holds every lead, none moves), and hostile values (every lead loaded or
/// rejected with a reason, the rest of its page going on).
@Suite(.serialized) struct DataPathTests {
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!
    static let start = "2026-11-01T00:00:00+0000"

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let leadflow: LeadFlowCLI

    init() throws {
        let scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme Analytics", forms: [.init(id: "2001", name: "Webinar", generate: .init(count: 700, start: Self.start, spacingSeconds: 1_800)),
                                                                   .init(id: "2002", name: "Demo", generate: .init(count: 140, start: Self.start, spacingSeconds: 7_200))]),
                    .init(id: "1002", name: "Globex", forms: [.init(id: "2003", name: "Trial", generate: .init(count: 210, start: Self.start, spacingSeconds: 3_600))])],
            tokens: [.user("EAAB-datapath-user", name: "Priya Shah", pages: ["1001", "1002"], issuedAt: UTCTime.iso8601(Self.now.addingTimeInterval(-600)))])
        fake = try GraphFake(scenario: scenario, now: Self.now)
        databaseURL = try TestDatabase.create("datapath")
        home = try Repository.temporaryFolder("datapath")
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, now: Self.now)
    }

    func connect(_ instance: String, _ page: String) async throws {
        let result = try await leadflow(["connect", "--instance", instance, "--page", page, "--name", "\(instance)-\(page)"], input: "EAAB-datapath-user\n")
        #expect(result.status == 0, "\(result.stderr)")
    }

    func ids(_ db: PostgresConnection, instance: String) throws -> Set<String> {
        Set(try db.query("SELECT lead_id FROM leads WHERE instance = $1", [instance]).all.map { try $0.string(0)! })
    }

    func fakeIDs(page: String, before instant: Date) -> Set<String> {
        let forms = page == "1001" ? ["2001", "2002"] : ["2003"]
        return Set(forms.flatMap { fake.leads(ofForm: $0) }.filter { $0.createdAt! < instant }.map(\.id))
    }

    @Test func onePageInTwoInstancesGivesEachEveryLeadAndEraseKeepsToItsInstance() async throws {
        try await connect("alpha", "1001")
        try await connect("beta", "1001")
        try await connect("gamma", "1002")
        let later = Self.now.addingTimeInterval(3_600)
        let last = Self.now.addingTimeInterval(7_200)
        // Runs in both orders of the instances' connections, new leads in between, and a
        // backfill of one instance's window: nothing moves between instances.
        #expect(try await leadflow(["run"]).status == 0)
        fake.addLeads((0..<20).map { n in
            GraphLead(id: "99900\(n)", createdTime: UTCTime.iso8601(Self.now.addingTimeInterval(Double(60 * n))),
                      fieldData: [.init(name: "email", values: ["late\(n)@example.com"])], formID: "2001", isOrganic: true)
        }, toForm: "2001")
        #expect(try await leadflow(["backfill", "--connection", "beta-1001", "--since", "2026-11-05T00:00:00Z"], at: later).status == 0)
        #expect(try await leadflow(["run"], at: later).status == 0)
        #expect(try await leadflow(["run"], at: last).status == 0)

        let db = try PostgresConnection(conninfo: databaseURL)
        let page1001 = fakeIDs(page: "1001", before: last)
        #expect(page1001.count == 700 + 140 + 20)
        #expect(try ids(db, instance: "alpha") == page1001)
        #expect(try ids(db, instance: "beta") == page1001)
        #expect(try ids(db, instance: "gamma") == fakeIDs(page: "1002", before: last))
        #expect(try db.query("SELECT count(*) FROM leads l JOIN connections c ON c.id = l.connection_id WHERE c.instance <> l.instance")[0].int(0) == 0,
                "every row belongs to its own instance's connection")

        // Erased from alpha only: beta keeps its copy, in its rows and its archives.
        let person = "late3@example.com"
        let erased = try await leadflow(["erase", "--email", "--instance", "alpha"], at: last, input: person + "\n")
        #expect(erased.status == 0, "\(erased.stderr)")
        #expect(try db.query("SELECT instance FROM leads WHERE email = $1", [person]).all.map { try $0.string(0)! } == ["beta"])
        let archives = try db.query("""
            SELECT c.instance, a.path FROM archives a JOIN connections c ON c.id = a.connection_id WHERE a.superseded_by IS NULL
            """).all.map { (try $0.string(0)!, try $0.string(1)!) }
        for (instance, path) in archives {
            let extracted = try Repository.temporaryFolder("erase-check")
            _ = try await leadflow(["archive", "extract", home.appendingPathComponent(path).path, "--to", extracted.path], at: last)
            let text = try FileManager.default.subpathsOfDirectory(atPath: extracted.path).compactMap {
                try? String(contentsOf: extracted.appendingPathComponent($0), encoding: .utf8)
            }.joined()
            if instance == "alpha" { #expect(!text.contains(person), "\(path)") }
        }
        #expect(archives.contains { $0.0 == "beta" }, "beta's archives are there to hold its copy")
        // A later run does not bring the person back into alpha, and beta keeps it.
        #expect(try await leadflow(["backfill", "--connection", "alpha-1001", "--since", "2026-11-19T00:00:00Z"], at: last).status == 0)
        #expect(try db.query("SELECT instance FROM leads WHERE email = $1", [person]).all.map { try $0.string(0)! } == ["beta"])
        // Without --instance: every instance.
        #expect(try await leadflow(["erase", "--email"], at: last, input: person + "\n").status == 0)
        #expect(try db.query("SELECT count(*) FROM leads WHERE email = $1", [person])[0].int(0) == 0)
    }

    @Test func hostileValuesAreLoadedOrRejectedAndNeverStopTheRun() async throws {
        try await connect("acme", "1001")
        // One lead in seven of form 2001 is hostile; the ones after it on its page are ordinary.
        let leads = fake.leads(ofForm: "2001").sorted { $0.id < $1.id }
        let long = String(repeating: "Quite a long answer. ", count: 3_400)
        let values: [[GraphLead.Field]] = [
            [.init(name: "email", values: ["nul@example.com"]), .init(name: "company_name", values: ["Acme\u{0}, Inc."])],
            [.init(name: "email", values: ["long@example.com"]), .init(name: "Tell us more", values: [long])],
            [.init(name: "email", values: ["rtl@example.com"]), .init(name: "full_name", values: ["שלום עליכם 👩🏽‍💻"])],
            [.init(name: "email", values: ["quotes@example.com"]), .init(name: "Note", values: ["\"quoted\" back\\slash\ttab\nline"])],
            [.init(name: "email", values: ["twice@example.com"]), .init(name: "Colour", values: ["red"]), .init(name: "Colour", values: ["blue"])],
            [.init(name: "email", values: ["empty@example.com"]), .init(name: "Skipped question", values: [])],
        ]
        var hostile: [String: Int] = [:]
        var malformed: [String] = []
        for (index, lead) in leads.enumerated() where index % 7 == 3 {
            let kind = (index / 7) % 10
            if kind < values.count {
                fake.replaceLead(GraphLead(id: lead.id, createdTime: lead.createdTime, fieldData: values[kind], formID: "2001", isOrganic: true), inForm: "2001")
                hostile[lead.id] = kind
            } else {
                // No lead Graph documents: a key missing, or a value of the wrong type.
                let raw = [
                    #"{"id":"\#(lead.id)","field_data":[{"name":"email","values":["x@example.com"]}]}"#,
                    #"{"created_time":"\#(lead.createdTime)","field_data":[]}"#,
                    #"{"id":"\#(lead.id)","created_time":"\#(lead.createdTime)","field_data":{"name":"email"}}"#,
                    #"{"id":\#(lead.id),"created_time":"\#(lead.createdTime)","field_data":[]}"#,
                ][kind - values.count]
                fake.serveRaw(raw, forLead: lead.id)
                malformed.append(lead.id)
            }
        }
        let first = try await leadflow(["run"])
        #expect([0, 2].contains(first.status), "exit 0 or 2, never 1: \(first.stderr)")
        let db = try PostgresConnection(conninfo: databaseURL)
        let loaded = try ids(db, instance: "acme")
        let expected = fakeIDs(page: "1001", before: Self.now).subtracting(malformed)
        #expect(loaded == expected, "every lead but the malformed ones, the ones after each hostile one included")
        let rejected = try db.query("SELECT count(*), count(*) FILTER (WHERE cardinality(reasons) > 0) FROM lead_rejections")[0]
        #expect(try rejected.int(0) == malformed.count && rejected.int(1) == malformed.count, "each malformed lead is a rejection with a reason")
        for (id, kind) in hostile {
            let row = try db.query("SELECT company, first_name, answers::text FROM leads WHERE lead_id = $1", [id])[0]
            switch kind {
            case 0: #expect(try row.string(0) == "Acme, Inc.")
            case 1: #expect(try row.string(2)?.contains(long) == true)
            case 2: #expect(try row.string(1) == "שלום")
            case 3: #expect(try db.query("SELECT answers->'Note'->>0 FROM leads WHERE lead_id = $1", [id])[0].string(0) == "\"quoted\" back\\slash\ttab\nline")
            case 4: #expect(try db.query("SELECT answers->'Colour' FROM leads WHERE lead_id = $1", [id])[0].string(0) == #"["red", "blue"]"#)
            default: #expect(try db.query("SELECT answers->'Skipped question' FROM leads WHERE lead_id = $1", [id])[0].string(0) == "null")
            }
        }

        // A second run changes nothing: no lead written again.
        let before = try db.query("SELECT max(updated_at), count(*) FROM leads")[0]
        let again = try await leadflow(["run"], at: Self.now.addingTimeInterval(60))
        #expect([0, 2].contains(again.status), "\(again.stderr)")
        let after = try db.query("SELECT max(updated_at), count(*) FROM leads")[0]
        #expect(try after.date(0) == before.date(0) && after.int(1) == before.int(1))
    }
}

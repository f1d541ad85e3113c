import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// A window's load against real Postgres: new leads are copied straight into `leads`,
/// leads that may be there go through staging; whatever the mix, each lead is one row.
@Suite struct LoadWindowTests {
    let db: PostgresConnection
    let store: LeadStore
    let transformer = LeadTransformer(pipeline: Pipeline(name: "test"))
    static let window = LeadWindow(from: UTCTime.parse("2026-11-01T00:00:00Z")!, to: UTCTime.parse("2026-11-02T00:00:00Z")!)

    init() throws {
        db = try PostgresConnection(conninfo: try TestDatabase.create("loadwindow"))
        try Migrator().migrate(db)
        store = LeadStore(try PostgresSession(conninfo: db.conninfo))
        try db.execute(raw: RawSQL(label: "a connection, a run, an archive", """
            INSERT INTO connections (instance, page_id, label, authenticator_user_id, token_ciphertext, token_key_id,
                                     token_type, authenticated_at, created_at, updated_at)
            VALUES ('acme', '1001', 'acme-main', '42', decode(repeat('ab', 40), 'hex'), 'k1', 'PAGE',
                    '2026-10-01T00:00:00Z', '2026-10-01T00:00:00Z', '2026-10-01T00:00:00Z');
            INSERT INTO runs (kind, pipeline, host, started_at, upper_bound)
                VALUES ('scheduled', 'test', 'test', '2026-11-03T00:00:00Z', '2026-11-03T00:00:00Z');
            INSERT INTO archives (run_id, connection_id, path, sha256, bytes, members, window_to, created_at, verified_at)
                VALUES (1, 1, 'archives/a.tar.zst', repeat('a', 64), 1, 1, '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z',
                        '2026-11-01T00:00:00Z');
            """))
    }

    func lead(_ id: String, email: String = "ann@example.com", created: String = "2026-11-01T10:00:00+0000") throws -> GraphLead {
        try JSONDecoder().decode(GraphLead.self, from: Data("""
            {"id":"\(id)","created_time":"\(created)","field_data":[{"name":"email","values":["\(email)"]}]}
            """.utf8))
    }

    /// Loads `raws` as one window of form `form`, the way a run does: transformed and
    /// hashed first, spooled in the load's format, then the batch loaded.
    func load(_ raws: [GraphLead], form: String = "2001", instance: String = "acme") async throws -> LoadCounts {
        let context = LeadContext(instance: instance, connectionID: 1, pageID: "1001", formID: form, formName: "Webinar")
        var bytes: [UInt8] = []
        var count = 0
        var rejections: [SpooledRejection] = []
        for raw in raws {
            switch transformer.transform(raw, context: context) {
            case .lead(let lead):
                LeadRow.append(lead, rawSHA256: String(repeating: "c", count: 64), to: &bytes)
                count += 1
            case .rejected(let rejection):
                rejections.append(SpooledRejection(rejection, rawSHA256: String(repeating: "d", count: 64)))
            }
        }
        let file = try Repository.temporaryFolder("rows").appendingPathComponent("rows.copy")
        try Data(bytes).write(to: file)
        return try await store.loadWindow(WindowBatch(runID: 1, connectionID: 1, instance: instance, formID: form, window: Self.window,
                                                archiveID: 1, commit: .leadsOnly, claim: nil, at: Date(), rows: file, rowCount: count,
                                                rejections: rejections))
    }

    func rows(_ instance: String = "acme") throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try db.query("SELECT lead_id, email FROM leads WHERE instance = $1", [instance]).all
            .map { (try $0.string(0)!, try $0.string(1) ?? "") })
    }

    @Test func newKnownChangedAndRepeatedLeadsEachEndAsOneRow() async throws {
        var first = try await load([lead("1"), lead("2"), lead("3")])
        #expect((first.inserted, first.updated, first.unchanged) == (3, 0, 0))
        // The overlap brings 2 and 3 again, 3 edited, and 4 is new: 4 copied, 2 and 3 staged.
        first = try await load([lead("2"), lead("3", email: "bob@example.com"), lead("4")])
        #expect((first.inserted, first.updated, first.unchanged) == (1, 1, 1))
        #expect(try rows() == ["1": "ann@example.com", "2": "ann@example.com", "3": "bob@example.com", "4": "ann@example.com"])
    }

    @Test func aLeadTwiceInOneWindowIsOneRow() async throws {
        // The direct copy refuses the second copy; the window is redone through staging.
        let counts = try await load([lead("7"), lead("8"), lead("7")])
        #expect(counts.inserted == 2)
        #expect(try rows().keys.sorted() == ["7", "8"])
    }

    @Test func aLeadAlreadyLoadedUnderAnotherFormIsNotDuplicated() async throws {
        _ = try await load([lead("9", created: "2026-06-01T00:00:00+0000")], form: "2002")
        // Far outside this window and under another form: not among the known ids, so the
        // direct copy meets it in the primary key and the window goes through staging.
        let counts = try await load([lead("9", email: "cy@example.com", created: "2026-06-01T00:00:00+0000"), lead("10")])
        #expect((counts.inserted, counts.updated) == (1, 1))
        #expect(try rows() == ["9": "cy@example.com", "10": "ann@example.com"])
    }

    @Test func rejectionsAreRecordedOnceWhateverThePath() async throws {
        _ = try await load([lead("20")])
        let bad = try JSONDecoder().decode(GraphLead.self, from: Data(#"{"id":"21","created_time":"2026-11-01T11:00:00+0000","field_data":[]}"#.utf8))
        // Known lead 20 makes a second pass; the rejection of 21 is still one row.
        let counts = try await load([lead("20"), bad, lead("22")])
        #expect(counts.rejected == 1)
        #expect(try db.query("SELECT count(*) FROM lead_rejections")[0].int(0) == 1)
        #expect(try rows().keys.sorted() == ["20", "22"])
    }
}

extension LoadWindowTests {
    @Test func oneLeadIdInTwoInstancesIsTwoRowsAndNeitherMoves() async throws {
        _ = try await load([lead("30"), lead("31")], instance: "alpha")
        _ = try await load([lead("30", email: "beta@example.com"), lead("31")], instance: "beta")
        _ = try await load([lead("30"), lead("31")], instance: "alpha")
        #expect(try rows("alpha") == ["30": "ann@example.com", "31": "ann@example.com"])
        #expect(try rows("beta") == ["30": "beta@example.com", "31": "ann@example.com"])
        #expect(try db.query("SELECT count(*) FROM leads")[0].int(0) == 4)
    }

    @Test func spooledRowsWithEveryHostileCharacterLoadUnchanged() async throws {
        let long = String(repeating: "long answer ", count: 6_000)  // ~70 kB
        let text = "tab\there \\ back\\slash \"quote\" שלום 👩🏽‍💻 line\nbreak"
        let raw = try JSONDecoder().decode(GraphLead.self, from: Data("""
            {"id":"40","created_time":"2026-11-01T10:00:00+0000","field_data":[
              {"name":"email","values":["nul@example.com"]},
              {"name":"company_name","values":["Acme\\u0000 Inc"]},
              {"name":"Your story","values":[\(JSONText.quoted(text))]},
              {"name":"Essay","values":[\(JSONText.quoted(long))]},
              {"name":"Colours","values":["red"]}, {"name":"Colours","values":["blue"]},
              {"name":"Nothing","values":[]}]}
            """.utf8))
        let counts = try await load([raw])
        #expect(counts.inserted == 1)
        let row = try db.query("SELECT company, answers->'Your story'->>0, answers->'Essay'->>0, answers->'Colours', answers->'Nothing' FROM leads WHERE lead_id = '40'")[0]
        #expect(try row.string(0) == "Acme Inc", "U+0000 removed, the rest kept")
        #expect(try row.string(1) == text)
        #expect(try row.string(2) == long)
        #expect(try row.string(3) == #"["red", "blue"]"#, "a field answered twice keeps both values")
        #expect(try row.string(4) == "null", "an empty answer list is null")
    }
}

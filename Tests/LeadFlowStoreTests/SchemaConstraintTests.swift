import Foundation
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// The schema's checks say what the data means; each bad row here must be refused.
@Suite struct SchemaConstraintTests {
    let db: PostgresConnection

    init() throws {
        db = try PostgresConnection(conninfo: try TestDatabase.create("schema"))
        try Migrator().migrate(db)
        // One valid row of each parent table, ids 1.
        try db.execute(raw: RawSQL(label: "valid fixture rows", """
            INSERT INTO runs (kind, pipeline, host, started_at, upper_bound)
                VALUES ('scheduled', 'pipelines/facebook-leads.yml', 'test', '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z');
            INSERT INTO connections (instance, page_id, label, authenticator_user_id, token_ciphertext, token_key_id,
                                     token_type, authenticated_at, created_at, updated_at)
                VALUES ('acme', '1001', 'acme-main', '42', decode(repeat('ab', 40), 'hex'), 'k1', 'PAGE',
                        '2026-10-01T00:00:00Z', '2026-10-01T00:00:00Z', '2026-10-01T00:00:00Z');
            INSERT INTO forms (connection_id, form_id, name, status, first_seen_run_id, last_seen_run_id)
                VALUES (1, '2001', 'Webinar', 'ACTIVE', 1, 1);
            INSERT INTO archives (run_id, connection_id, path, sha256, bytes, members, window_to, created_at, verified_at)
                VALUES (1, 1, 'archives/acme/1001/1.tar.zst', repeat('a', 64), 100, 2, '2026-11-01T00:00:00Z',
                        '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z');
            """))
    }

    /// A lead row that passes every check, with one column replaced.
    func insertLead(_ column: String, _ value: String?) throws {
        var columns: [String: String?] = [
            "lead_id": "3001", "instance": "acme", "connection_id": "1", "page_id": "1001", "form_id": "2001",
            "is_organic": "false", "created_at": "2026-11-01T10:00:00Z", "email": "ann@example.com",
            "raw_sha256": String(repeating: "b", count: 64), "archive_id": "1", "first_run_id": "1", "last_run_id": "1",
            "loaded_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z",
        ]
        columns[column] = .some(value)
        let names = columns.keys.sorted()
        let placeholders = names.indices.map { "$\($0 + 1)" }.joined(separator: ", ")
        try db.query("INSERT INTO leads (\(names.joined(separator: ", "))) VALUES (\(placeholders))",
                     names.map { columns[$0]! }, label: "insert lead")
    }

    @Test func aValidLeadIsAccepted() throws {
        try insertLead("country", "US")
        #expect(try db.query("SELECT count(*) FROM leads")[0].int(0) == 1)
    }

    @Test(arguments: [
        ("email", "Ann@Example.com"),      // not lower-cased
        ("email", " ann@example.com"),     // not trimmed
        ("email", "not-an-address"),
        ("email", nil),                    // and no phone: unreachable
        ("country", "USA"),                // not ISO 3166-1 alpha-2
        ("lead_id", "abc"),
        ("raw_sha256", "xyz"),
        ("updated_at", "2026-11-01T09:00:00Z"), // updated before it was loaded
    ] as [(String, String?)])
    func anInvalidLeadIsRefused(column: String, value: String?) throws {
        let error = #expect(throws: PostgresError.self) { try insertLead(column, value) }
        #expect(error?.sqlState == "23514", "\(column)")
    }

    @Test func anOrganicLeadCarriesNoAd() throws {
        #expect(throws: PostgresError.self) {
            try db.query("""
                INSERT INTO leads (lead_id, instance, connection_id, page_id, form_id, is_organic, ad_id, created_at, phone,
                                   raw_sha256, archive_id, first_run_id, last_run_id, loaded_at, updated_at)
                VALUES ('3002', 'acme', 1, '1001', '2001', true, '777', now(), '+15550100', $1, 1, 1, 1, now(), now())
                """, [String(repeating: "c", count: 64)])
        }
    }

    @Test func aVoidPeriodEndsAfterItStartsAndOnlyOneIsOpen() throws {
        let endsBeforeStart = #expect(throws: PostgresError.self) {
            try db.query("INSERT INTO void_periods (connection_id, cause, started_at, ended_at) VALUES (1, 'token_expired', $1, $2)",
                         ["2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z"])
        }
        #expect(endsBeforeStart?.sqlState == "23514")
        try db.query("INSERT INTO void_periods (connection_id, cause, started_at) VALUES (1, 'token_expired', $1)", ["2026-11-02T00:00:00Z"])
        let secondOpen = #expect(throws: PostgresError.self) {
            try db.query("INSERT INTO void_periods (connection_id, cause, started_at) VALUES (1, 'permission_revoked', $1)",
                         ["2026-11-03T00:00:00Z"])
        }
        #expect(secondOpen?.sqlState == "23505")
        let unknownCause = #expect(throws: PostgresError.self) {
            try db.query("INSERT INTO void_periods (connection_id, cause, started_at, ended_at) VALUES (1, 'bad_luck', $1, $2)",
                         ["2026-10-02T00:00:00Z", "2026-10-03T00:00:00Z"])
        }
        #expect(unknownCause?.sqlState == "23514")
    }

    @Test func otherTablesRefuseWhatCannotBe() throws {
        let cases: [(String, String)] = [
            ("runs: finished but still running",
             "INSERT INTO runs (kind, pipeline, host, started_at, upper_bound, finished_at) VALUES ('scheduled', 'p', 'h', now(), now(), now())"),
            ("snapshot: negative counter",
             "INSERT INTO form_snapshots VALUES (1, 1, '2001', now(), -1, 0, 0)"),
            ("connection: a token too short to be AES-GCM output",
             "INSERT INTO connections (instance, page_id, label, authenticator_user_id, token_ciphertext, token_key_id, token_type, authenticated_at, created_at, updated_at) VALUES ('acme', '1002', 'x', '42', '\\x00', 'k1', 'PAGE', now(), now(), now())"),
            ("archive: a path that leaves the home folder",
             "INSERT INTO archives (run_id, connection_id, path, sha256, bytes, members, window_to, created_at, verified_at) VALUES (1, 1, '../x.tar.zst', repeat('a', 64), 1, 1, now(), now(), now())"),
            ("reminder: due after expiry",
             "INSERT INTO reminders (connection_id, kind, cycle_started_at, due_at, expires_at, created_at) VALUES (1, 'reauthentication_due', '2026-10-01Z', '2027-01-01Z', '2026-12-30Z', now())"),
            ("rejection: no reason",
             "INSERT INTO lead_rejections (run_id, connection_id, instance, form_id, reasons, raw_sha256, rejected_at) VALUES (1, 1, 'acme', '2001', '{}', repeat('d', 64), now())"),
        ]
        for (what, sql) in cases {
            let error = #expect(throws: PostgresError.self, "\(what)") { try db.execute(raw: RawSQL(label: what, sql)) }
            #expect(error?.sqlState == "23514", "\(what)")
        }
    }

    @Test func oneReminderPerConnectionKindAndCycle() throws {
        let sql = "INSERT INTO reminders (connection_id, kind, cycle_started_at, due_at, expires_at, created_at) VALUES (1, 'reauthentication_due', '2026-10-01Z', '2026-12-15Z', '2026-12-30Z', now())"
        try db.execute(raw: RawSQL(label: "reminder", sql))
        let error = #expect(throws: PostgresError.self) { try db.execute(raw: RawSQL(label: "reminder again", sql)) }
        #expect(error?.sqlState == "23505")
    }
}

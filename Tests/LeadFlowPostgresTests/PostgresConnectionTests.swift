import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// Against the real cluster that scripts/test.sh starts.
@Suite struct PostgresConnectionTests {
    let url: String
    init() throws { url = try TestDatabase.create("pg") }

    @Test func parametersRoundTrip() async throws {
        let db = try PostgresConnection(conninfo: url)
        let text = "O'Brien said \"hi\" — 日本語 ✓ \\ tab\tend"
        let instant = try #require(UTCTime.parse("2026-11-01T12:34:56.123456+0000"))
        let row = try db.query("SELECT $1::text, $2::bigint, $3::float8, $4::bool, $5::timestamptz, $6::text, $7::bytea, $8::text[]",
                               [text, Int64(9_007_199_254_740_993), 3.25, true, instant, Optional<String>.none,
                                Data([0, 1, 0xFE, 0xFF]), ["a,b", #"q"uote"#, "{x}"]])[0]
        #expect(try row.string(0) == text)
        #expect(try row.int(1) == 9_007_199_254_740_993)
        #expect(try row.double(2) == 3.25)
        #expect(try row.bool(3) == true)
        #expect(try row.date(4) == instant)
        #expect(try row.string(5) == nil)
        #expect(try row.isNull(5))
        #expect(try row.bytes(6) == Data([0, 1, 0xFE, 0xFF]))
        #expect(try row.string(7) == #"{"a,b","q\"uote","{x}"}"#)
    }

    @Test func timestampsKeepTheirInstantWhateverTheZoneWritten() async throws {
        let db = try PostgresConnection(conninfo: url)
        let row = try db.query("SELECT '2026-11-01 14:34:56+02'::timestamptz AS at")[0]
        #expect(try row.date("at") == UTCTime.parse("2026-11-01T12:34:56Z"))
    }

    @Test func aFailingStatementRollsTheTransactionBack() async throws {
        let db = try PostgresConnection(conninfo: url)
        try db.execute(raw: RawSQL(label: "test table", "CREATE TABLE t (id int PRIMARY KEY, email text)"))
        let error = #expect(throws: PostgresError.self) {
            try db.transaction { db in
                try db.query("INSERT INTO t VALUES ($1, $2)", [1, "first@example.com"])
                try db.query("INSERT INTO t VALUES ($1, $2)", [1, "dup@example.com"], label: "insert lead")
            }
        }
        #expect(error?.sqlState == "23505")
        #expect(error?.disposition == .fatal)
        // Safe to show: names the statement and the condition, not the duplicated value.
        #expect(error?.description == "postgres.query: PQexecParams failed (insert lead) with SQLSTATE 23505 (unique_violation)")
        #expect(error.map { !$0.description.contains("@example.com") } == true)
        #expect(error?.debugDescription.contains("duplicate key") == true)
        #expect(try db.query("SELECT count(*) FROM t")[0].int(0) == 0)
        // The connection is usable again.
        try db.transaction { try $0.query("INSERT INTO t VALUES ($1, $2)", [2, "ok@example.com"]) }
        #expect(try db.query("SELECT count(*) FROM t")[0].int(0) == 1)
    }

    @Test func copiesOneHundredThousandRows() async throws {
        let db = try PostgresConnection(conninfo: url)
        try db.execute(raw: RawSQL(label: "test table", "CREATE TABLE c (id bigint, note text, at timestamptz)"))
        let base = try #require(UTCTime.parse("2026-01-01T00:00:00Z"))
        let stored = try db.copyIn("COPY c (id, note, at) FROM STDIN", label: "copy test rows", chunkSize: 64 << 10) { writer in
            for id in 0..<100_000 {
                writer.append(id)
                writer.append(id % 1000 == 0 ? "tab\there\nnewline \\ é" : (id % 7 == 0 ? nil : "row \(id)"))
                writer.append(base.addingTimeInterval(Double(id)))
                try writer.endRow()
            }
        }
        #expect(stored == 100_000)
        let summary = try db.query("SELECT count(*), count(DISTINCT id), count(note), max(at) FROM c")[0]
        #expect(try summary.int(0) == 100_000)
        #expect(try summary.int(1) == 100_000)
        #expect(try summary.int(2) == 100_000 - (0..<100_000).filter { $0 % 7 == 0 && $0 % 1000 != 0 }.count)
        #expect(try summary.date(3) == base.addingTimeInterval(99_999))
        #expect(try db.query("SELECT note FROM c WHERE id = 5000")[0].string(0) == "tab\there\nnewline \\ é")
    }

    @Test func anAbortedCopyLeavesNoRows() async throws {
        struct ProducerFailed: Error {}
        let db = try PostgresConnection(conninfo: url)
        try db.execute(raw: RawSQL(label: "test table", "CREATE TABLE c (id bigint)"))
        #expect(throws: ProducerFailed.self) {
            try db.copyIn("COPY c FROM STDIN", label: "copy then fail", chunkSize: 1024) { writer in
                // Well past several chunks, so rows have already reached the server.
                for id in 0..<50_000 {
                    writer.append(id)
                    try writer.endRow()
                }
                throw ProducerFailed()
            }
        }
        #expect(try db.query("SELECT count(*) FROM c")[0].int(0) == 0)
    }

    @Test func aLostConnectionIsReportedNotSwallowed() async throws {
        let db = try PostgresConnection(conninfo: url)
        let admin = try PostgresConnection(conninfo: url)
        try db.execute(raw: RawSQL(label: "test table", "CREATE TABLE t (id int)"))
        let error = #expect(throws: PostgresError.self) {
            try db.transaction { db in
                try db.query("INSERT INTO t VALUES (1)")
                try admin.query("SELECT pg_terminate_backend($1)", [Int(db.backendPID)])
                try db.query("INSERT INTO t VALUES (2)")
            }
        }
        #expect(error?.kind == .connectionLost)
        #expect(error?.disposition == .retry)
        #expect(try admin.query("SELECT count(*) FROM t")[0].int(0) == 0)
    }

    @Test func aCommitThatCannotReachTheServerThrows() async throws {
        let db = try PostgresConnection(conninfo: url)
        let admin = try PostgresConnection(conninfo: url)
        try db.execute(raw: RawSQL(label: "test table", "CREATE TABLE t (id int)"))
        #expect(throws: PostgresError.self) {
            try db.transaction { db in
                try db.query("INSERT INTO t VALUES (1)")
                try admin.query("SELECT pg_terminate_backend($1)", [Int(db.backendPID)])
                usleep(200_000) // let the server end the session first (inside a sync transaction body)
            }
        }
        #expect(try admin.query("SELECT count(*) FROM t")[0].int(0) == 0)
    }

    @Test func aServerThatIsNotThereIsAConnectError() async throws {
        let error = #expect(throws: PostgresError.self) {
            try PostgresConnection(conninfo: "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
        }
        #expect(error?.kind == .connect)
        #expect(error?.function == "PQconnectdb")
    }

    @Test func decodingTheWrongTypeNamesTheColumnNotTheValue() async throws {
        let db = try PostgresConnection(conninfo: url)
        let row = try db.query("SELECT $1::text AS email", ["someone@example.com"])[0]
        let error = #expect(throws: PostgresError.self) { try row.int("email") }
        #expect(error?.kind == .decode)
        #expect(error.map { !$0.debugDescription.contains("someone@") } == true)
        #expect(error?.debugDescription.contains("column email") == true)
    }
}

import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport
import Testing

@Suite struct MigratorTests {
    @Test func migratingTwiceAppliesOnceThenNothing() throws {
        let db = try PostgresConnection(conninfo: try TestDatabase.create("migrate"))
        let first = try Migrator().migrate(db)
        #expect(first.applied == Migrations.all.map(\.version))
        #expect(first.version == Migrations.latestVersion)
        let second = try Migrator().migrate(db)
        #expect(second.applied.isEmpty)
        #expect(second.version == Migrations.latestVersion)
        #expect(try db.query("SELECT count(*) FROM schema_migrations")[0].int(0) == Migrations.all.count)
        let tables = try db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
            .all.map { try $0.string(0) ?? "" }
        #expect(tables == ["archives", "auth_events", "backfill_windows", "connection_leases", "connections", "erasure_key", "erasure_pending",
                           "erasures", "form_reconciliations", "form_snapshots", "forms", "graph_app_usage", "lead_rejections", "leads",
                           "metric_totals", "notification_deliveries", "notifications", "prunes", "reminders", "retired_token_keys", "run_forms",
                           "run_passes", "runs", "schema_migrations", "void_periods", "watermarks", "withheld_leads", "work_items", "work_rounds"])
    }

    /// Tombstones from before migration 10 were hashed under the token key's derivation:
    /// they are marked with the key of the connection authenticated last, for `KeyCustody`
    /// to write that derived key to the erasure key file and relabel them.
    @Test func migrationTenMarksOlderTombstonesWithTheTokenKeyTheyCameFrom() throws {
        let db = try PostgresConnection(conninfo: try TestDatabase.create("legacy"))
        try Migrator(migrations: Migrations.all.filter { $0.version < 10 }).migrate(db)
        for (label, key, day) in [("old", "aaaaaaaaaaaa", "2026-01-01"), ("new", "bbbbbbbbbbbb", "2026-02-01")] {
            try db.query("""
                INSERT INTO connections (instance, page_id, label, authenticator_user_id, token_ciphertext, token_key_id, token_type,
                                         authenticated_at, created_at, updated_at)
                VALUES ('acme', $1, $1, '42', decode(repeat('00', 40), 'hex'), $2, 'PAGE', $3, $3, $3)
                """, [label == "old" ? "1" : "2", key, day])
        }
        try db.query("INSERT INTO erasures (subject_kind, subject_hash, requested_at) VALUES ('email', repeat('c', 64), now())")
        try Migrator().migrate(db)
        #expect(try db.query("SELECT key_id FROM erasures")[0].string(0) == "token:bbbbbbbbbbbb")
        #expect(try db.query("SELECT count(*) FROM erasure_key")[0].int(0) == 0)
    }

    @Test func aSchemaNewerThanTheBinaryIsRefused() throws {
        let db = try PostgresConnection(conninfo: try TestDatabase.create("newer"))
        try Migrator().migrate(db)
        try db.query("INSERT INTO schema_migrations VALUES ($1, $2, now())", [Migrations.latestVersion + 1, "from the future"])
        let error = #expect(throws: MigrationError.self) { try Migrator().migrate(db) }
        #expect(error?.databaseVersion == Migrations.latestVersion + 1)
        #expect(error?.binaryVersion == Migrations.latestVersion)
    }

    @Test func aFailingMigrationLeavesNoTrace() throws {
        let db = try PostgresConnection(conninfo: try TestDatabase.create("broken"))
        let broken = [Migration(version: 1, name: "half", sql: "CREATE TABLE half (id int); SELECT 1/0;")]
        #expect(throws: PostgresError.self) { try Migrator(migrations: broken).migrate(db) }
        #expect(try Migrator().currentVersion(db) == 0)
        #expect(try db.query("SELECT to_regclass('half') IS NULL")[0].bool(0) == true)
    }

    @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
        let url = try TestDatabase.create("race")
        let outcomes = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 {
                group.addTask { try Migrator().migrate(PostgresConnection(conninfo: url)).applied }
            }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        #expect(outcomes.flatMap { $0 }.sorted() == Migrations.all.map(\.version))
    }
}

import Foundation
import LeadFlowCore
import LeadFlowPostgres
import Logging

/// One versioned step of the schema. Versions are consecutive from 1 and never edited
/// once released: a change is a new migration.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// Every migration this binary knows, in order. Version 9 belongs to a change being made
/// beside this one (issue 18): it joins the list when both are merged.
public enum Migrations {
    public static let all: [Migration] = [migration0001, migration0002, migration0003, migration0004, migration0005, migration0006,
                                          migration0007, migration0008, migration0009, migration0010, migration0011, migration0012]
    public static var latestVersion: Int { all.last?.version ?? 0 }
}

/// Why `migrate` refused to run.
public struct MigrationError: LeadFlowError, Equatable {
    public let code = "store.schema_newer_than_binary"
    public let databaseVersion: Int
    public let binaryVersion: Int
    public var disposition: Disposition { .fatal }
    public var description: String {
        "\(code): the database's schema is at version \(databaseVersion), newer than this binary's \(binaryVersion); "
            + "run a leadflow at least as new as the one that migrated it"
    }
}

/// Applies migrations in order, each in its own transaction, recording each in
/// `schema_migrations`. Safe to run twice and from several workers at once: an advisory
/// lock lets one migrate while the others wait, and then find nothing to do.
public struct Migrator {
    /// Arbitrary but fixed: the advisory lock key that serialises migrations.
    static let lockKey: Int64 = 0x4C65_6164_466C_6F77 // "LeadFlow"

    let migrations: [Migration]
    let logger: Logger

    public init(migrations: [Migration] = Migrations.all, logger: Logger = Logger(label: "leadflow.migrate")) {
        self.migrations = migrations
        self.logger = logger
    }

    public struct Outcome: Equatable, Sendable {
        /// Versions applied by this call, in order; empty when the schema was current.
        public let applied: [Int]
        public let version: Int
    }

    @discardableResult
    public func migrate(_ connection: PostgresConnection, now: Date = Date()) throws -> Outcome {
        // Lock first: even CREATE TABLE IF NOT EXISTS races with itself in Postgres
        // (two sessions both see no table, one fails on pg_type's unique key).
        try connection.query("SELECT pg_advisory_lock($1)", [Self.lockKey], label: "migration lock")
        defer { _ = try? connection.query("SELECT pg_advisory_unlock($1)", [Self.lockKey], label: "migration unlock") }
        try connection.execute(raw: RawSQL(label: "schema_migrations", """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY CHECK (version > 0),
                name       text NOT NULL,
                applied_at timestamptz NOT NULL
            )
            """))
        let current = try currentVersion(connection)
        let known = migrations.last?.version ?? 0
        if current > known {
            throw MigrationError(databaseVersion: current, binaryVersion: known)
        }
        var applied: [Int] = []
        for migration in migrations where migration.version > current {
            try connection.transaction { connection in
                try connection.execute(raw: RawSQL(label: "migration \(migration.version)", migration.sql))
                try connection.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                                     [migration.version, migration.name, now], label: "record migration")
            }
            logger.info("applied migration", metadata: ["migration.version": "\(migration.version)",
                                                        "migration.name": "\(migration.name)"])
            applied.append(migration.version)
        }
        return Outcome(applied: applied, version: max(current, applied.last ?? current))
    }

    public func currentVersion(_ connection: PostgresConnection) throws -> Int {
        try connection.query("SELECT coalesce(max(version), 0) FROM schema_migrations", label: "schema version")[0].int(0) ?? 0
    }
}

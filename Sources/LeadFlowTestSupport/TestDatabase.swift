import Foundation
import LeadFlowPostgres

/// The real Postgres that `scripts/test.sh` starts, and fresh databases inside it.
///
/// Tests that need it fail, never skip, when it is missing: a skipped database test
/// proves nothing, and CI must not pass without one.
public enum TestDatabase {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "LEADFLOW_TEST_DATABASE_URL is not set: run the tests with `bash scripts/test.sh`, which starts a throwaway Postgres"
        }
    }

    /// The conninfo of the cluster's maintenance database.
    public static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["LEADFLOW_TEST_DATABASE_URL"], !url.isEmpty else {
            throw Missing()
        }
        return url
    }

    /// Creates an empty database with a unique name and returns its conninfo.
    public static func create(_ purpose: String = "test") throws -> String {
        let server = try serverURL()
        let name = "lf_\(purpose.lowercased().filter { $0.isLetter || $0.isNumber })_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PostgresConnection(conninfo: server)
        try admin.execute(raw: RawSQL(label: "create test database", "CREATE DATABASE \(name)"))
        return url(server, database: name)
    }

    /// `server` with its database replaced by `database` (URI or key=value form).
    static func url(_ server: String, database: String) -> String {
        if server.hasPrefix("postgres://") || server.hasPrefix("postgresql://") {
            var components = URLComponents(string: server)!
            components.path = "/" + database
            return components.string!
        }
        return server + " dbname=\(database)"
    }
}

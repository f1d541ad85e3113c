import Foundation
import LeadFlowPostgres

/// Holding a process at a chosen statement: another session takes a lock the statement
/// needs, the test waits until Postgres shows the statement waiting for it, then kills the
/// process there (the instant is then the one named, not a guess).
extension PostgresConnection {
    /// Waits until a statement like `pattern` (SQL LIKE) waits on a lock; false after `attempts` looks.
    public func waitForLockWait(like pattern: String, attempts: Int = 1200) async throws -> Bool {
        for _ in 0..<attempts {
            if try query("""
                SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1
                """, [pattern]).count > 0 {
                return true
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Ends the backends (of this database) whose statement like `pattern` waits on a lock,
    /// and waits until they are gone. A killed client's backend notices only when it next
    /// talks to the client: the statement would otherwise still run, and commit, once the
    /// lock is released. (Only waiting ones: `query` is an idle session's last statement too,
    /// and tests in other databases share the server.)
    public func endWaitingBackends(like pattern: String) async throws {
        let ended = try query("""
            SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1 AND pid <> pg_backend_pid()
            """, [pattern]).all.compactMap { try $0.int(0) }
        for _ in 0..<1200 {
            if try query("SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1::int[])", [ended.map(String.init)]).count == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

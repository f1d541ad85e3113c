import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// What the metrics of a run read from Postgres (`MetricsFacts`).
public struct MetricsStore: Sendable {
    let session: PostgresSession

    public init(_ session: PostgresSession) {
        self.session = session
    }

    /// - Parameters:
    ///   - runID: the run whose end is `runFinishedAt` (nil: none, the run failed early).
    ///   - kind: whose last success to read.
    public func facts(runID: Int64?, kind: RunKind) async throws -> MetricsFacts {
        try await session.run { db in
            var facts = MetricsFacts()
            if let runID {
                facts.runFinishedAt = try db.query("SELECT finished_at FROM runs WHERE id = $1", [runID], label: "run end").all.first?.date(0)
            }
            // A run that finished with no failed pass is a success, even if a connection is
            // void (that is a person's job, exit 2); a run older than migration 9 counts only
            // when it succeeded outright.
            facts.lastSuccessAt = try db.query("""
                SELECT max(finished_at) FROM runs
                WHERE kind = $1 AND (status = 'succeeded' OR (status = 'partial' AND failures = 0))
                """, [kind.rawValue], label: "last success")[0].date(0)
            facts.totals = try db.query("SELECT name, label, value FROM metric_totals ORDER BY name, label", label: "metric totals").all.map {
                MetricTotal(name: try $0.string(0)!, label: try $0.string(1) ?? "", value: try $0.double(2) ?? 0)
            }
            for row in try db.query("""
                SELECT channel, count(*) FROM notification_deliveries WHERE delivered_at IS NULL GROUP BY channel
                UNION ALL
                SELECT 'unrouted', count(*) FROM notifications WHERE routed_at IS NULL
                """, label: "pending notifications").all {
                facts.pendingNotifications[try row.string(0)!] = try row.int(1) ?? 0
            }
            let archives = try db.query("""
                SELECT count(*), coalesce(sum(bytes), 0) FROM archives WHERE superseded_by IS NULL AND pruned_at IS NULL
                """, label: "archives on disk")[0]
            facts.archives = try archives.int(0) ?? 0
            facts.archiveBytes = Int64(try archives.int(1) ?? 0)
            return facts
        }
    }
}

import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// The history of runs (`runs`, `run_passes`, `run_forms`): what `leadflow runs` lists and
/// shows, what `status` says of each connection's last run, and the pruning of old runs.
/// Field names are the JSON keys `--json` prints.
public struct RunHistoryStore: Sendable {
    let session: PostgresSession

    public init(_ session: PostgresSession) {
        self.session = session
    }

    /// One run, as `leadflow runs` lists it.
    public struct RunRow: Sendable, Equatable, Encodable {
        public let id: Int64
        public let kind: String
        public let status: String
        public let pipeline: String
        public let host: String
        public let worker: String?
        public let started_at: String
        public let finished_at: String?
        /// Passes that failed (NULL: finished before migration 9, or still running).
        public let failures: Int?
        /// The run row's counters: leads inserted, updated, unchanged, rejected, erased.
        public let counters: [String: Int]
        public let connections: Int
        public let graph_requests: Int
        public let archives: Int
        public let archive_bytes: Int64
    }

    /// One form of a pass.
    public struct FormRow: Sendable, Equatable, Encodable {
        public let form_id: String
        public let window_from: String?
        public let window_to: String?
        public let pages: Int
        public let leads: Int
        public let inserted: Int
        public let updated: Int
        public let unchanged: Int
        public let rejected: Int
        public let graph_requests: Int
        public let graph_errors: [String: Int]
        public let error_code: String?
        public let error: String?
    }

    public struct ArchiveRef: Sendable, Equatable, Encodable {
        public let id: Int64
        public let path: String
        public let bytes: Int64
        public let pruned_at: String?
    }

    public struct Seconds: Sendable, Equatable, Encodable {
        public let preflight: Double
        public let extract: Double
        public let archive: Double
        public let load: Double
    }

    /// One connection's pass of a run.
    public struct PassRow: Sendable, Equatable, Encodable {
        public let connection: String
        public let connection_id: Int64
        public let instance: String
        public let job: String
        public let void_period_id: Int64?
        public let state: String
        public let detail: String?
        public let pages: Int
        public let inserted: Int
        public let updated: Int
        public let unchanged: Int
        public let rejected: Int
        public let erased: Int
        public let graph_requests: Int
        public let graph_errors: [String: Int]
        public let rate_limit_waits: Int
        public let rate_limit_wait_seconds: Double
        public let seconds: Seconds
        public let archive: ArchiveRef?
        public let forms: [FormRow]
    }

    /// A run with its passes, as `leadflow runs show` prints it.
    public struct RunDetail: Sendable, Equatable, Encodable {
        public let run: RunRow
        public let passes: [PassRow]
    }

    static let runColumns = """
        r.id, r.kind, r.status, r.pipeline, r.host, r.worker_id, r.started_at, r.finished_at, r.failures, r.counters::text,
        (SELECT count(DISTINCT p.connection_id) FROM run_passes p WHERE p.run_id = r.id),
        (SELECT coalesce(sum(p.graph_requests), 0) FROM run_passes p WHERE p.run_id = r.id),
        (SELECT count(*) FROM archives a WHERE a.run_id = r.id AND a.superseded_by IS NULL),
        (SELECT coalesce(sum(a.bytes), 0) FROM archives a WHERE a.run_id = r.id AND a.superseded_by IS NULL)
        """

    static func runRow(_ row: PostgresRow) throws -> RunRow {
        let counters = (try? JSONSerialization.jsonObject(with: Data((try row.string(9) ?? "{}").utf8))) as? [String: Int] ?? [:]
        return RunRow(id: Int64(try row.int(0)!), kind: try row.string(1)!, status: try row.string(2)!, pipeline: try row.string(3)!,
                      host: try row.string(4)!, worker: try row.string(5), started_at: UTCTime.iso8601(try row.date(6)!),
                      finished_at: try row.date(7).map(UTCTime.iso8601), failures: try row.int(8), counters: counters,
                      connections: try row.int(10) ?? 0, graph_requests: try row.int(11) ?? 0, archives: try row.int(12) ?? 0,
                      archive_bytes: Int64(try row.int(13) ?? 0))
    }

    /// The newest runs first.
    public func runs(limit: Int) async throws -> [RunRow] {
        try await session.run { db in
            try db.query("SELECT \(Self.runColumns) FROM runs r ORDER BY r.id DESC LIMIT $1", [limit], label: "list runs").all.map(Self.runRow)
        }
    }

    /// A run and its passes (in the order they were recorded), each with its forms; nil when
    /// there is no such run.
    public func run(_ id: Int64) async throws -> RunDetail? {
        try await session.run { db in
            guard let row = try db.query("SELECT \(Self.runColumns) FROM runs r WHERE r.id = $1", [id], label: "show run").all.first else {
                return nil
            }
            let forms = Dictionary(grouping: try db.query("""
                SELECT f.pass_id, f.form_id, f.window_from, f.window_to, f.pages, f.leads, f.inserted, f.updated, f.unchanged, f.rejected,
                       f.graph_requests, f.graph_errors::text, f.error_code, f.error
                FROM run_forms f JOIN run_passes p ON p.id = f.pass_id WHERE p.run_id = $1 ORDER BY f.pass_id, f.form_id
                """, [id], label: "run forms").all.map { row in
                (Int64(try row.int(0)!), FormRow(
                    form_id: try row.string(1)!, window_from: try row.date(2).map(UTCTime.iso8601), window_to: try row.date(3).map(UTCTime.iso8601),
                    pages: try row.int(4) ?? 0, leads: try row.int(5) ?? 0, inserted: try row.int(6) ?? 0, updated: try row.int(7) ?? 0,
                    unchanged: try row.int(8) ?? 0, rejected: try row.int(9) ?? 0, graph_requests: try row.int(10) ?? 0,
                    graph_errors: Self.counts(try row.string(11)), error_code: try row.string(12), error: try row.string(13)))
            }, by: \.0).mapValues { $0.map(\.1) }
            let passes = try db.query("""
                SELECT p.id, c.label, p.connection_id, c.instance, p.job, p.void_period_id, p.state, p.detail, p.pages, p.inserted, p.updated,
                       p.unchanged, p.rejected, p.erased, p.graph_requests, p.graph_errors::text, p.rate_limit_waits,
                       p.rate_limit_wait_seconds, p.preflight_seconds, p.extract_seconds, p.archive_seconds, p.load_seconds,
                       a.id, a.path, a.bytes, a.pruned_at
                FROM run_passes p JOIN connections c ON c.id = p.connection_id LEFT JOIN archives a ON a.id = p.archive_id
                WHERE p.run_id = $1 ORDER BY p.id
                """, [id], label: "run passes").all.map { row in
                let passID = Int64(try row.int(0)!)
                let archive = try row.int(22).map { archiveID in
                    ArchiveRef(id: Int64(archiveID), path: try row.string(23)!, bytes: Int64(try row.int(24) ?? 0),
                               pruned_at: try row.date(25).map(UTCTime.iso8601))
                }
                return PassRow(
                    connection: try row.string(1)!, connection_id: Int64(try row.int(2)!), instance: try row.string(3)!, job: try row.string(4)!,
                    void_period_id: try row.int(5).map(Int64.init), state: try row.string(6)!, detail: try row.string(7),
                    pages: try row.int(8) ?? 0, inserted: try row.int(9) ?? 0, updated: try row.int(10) ?? 0, unchanged: try row.int(11) ?? 0,
                    rejected: try row.int(12) ?? 0, erased: try row.int(13) ?? 0, graph_requests: try row.int(14) ?? 0,
                    graph_errors: Self.counts(try row.string(15)), rate_limit_waits: try row.int(16) ?? 0,
                    rate_limit_wait_seconds: try row.double(17) ?? 0,
                    seconds: Seconds(preflight: try row.double(18) ?? 0, extract: try row.double(19) ?? 0, archive: try row.double(20) ?? 0,
                                     load: try row.double(21) ?? 0),
                    archive: archive, forms: forms[passID] ?? [])
            }
            return RunDetail(run: try Self.runRow(row), passes: passes)
        }
    }

    static func counts(_ json: String?) -> [String: Int] {
        (try? JSONSerialization.jsonObject(with: Data((json ?? "{}").utf8))) as? [String: Int] ?? [:]
    }

    /// Per connection: when a run last looked at it, and when a pass last loaded it (runs'
    /// clocks), with those runs' ids.
    public struct LastRuns: Sendable, Equatable {
        public let lastRunID: Int64?
        public let lastRunAt: Date?
        public let lastSuccessRunID: Int64?
        public let lastSuccessAt: Date?
    }

    public func lastRuns() async throws -> [Int64: LastRuns] {
        try await session.run { db in
            var result: [Int64: LastRuns] = [:]
            for row in try db.query("""
                SELECT c.id, last.run_id, last.at, ok.run_id, ok.at FROM connections c
                LEFT JOIN LATERAL (SELECT p.run_id, coalesce(r.finished_at, r.started_at) AS at FROM run_passes p JOIN runs r ON r.id = p.run_id
                                   WHERE p.connection_id = c.id ORDER BY p.run_id DESC LIMIT 1) last ON true
                LEFT JOIN LATERAL (SELECT p.run_id, coalesce(r.finished_at, r.started_at) AS at FROM run_passes p JOIN runs r ON r.id = p.run_id
                                   WHERE p.connection_id = c.id AND p.state = 'loaded' ORDER BY p.run_id DESC LIMIT 1) ok ON true
                """, label: "last runs per connection").all {
                result[Int64(try row.int(0)!)] = LastRuns(lastRunID: try row.int(1).map(Int64.init), lastRunAt: try row.date(2),
                                                          lastSuccessRunID: try row.int(3).map(Int64.init), lastSuccessAt: try row.date(4))
            }
            return result
        }
    }

    /// What `runs prune` removed (or, dry, would remove) and kept.
    public struct PruneOutcome: Sendable, Equatable, Encodable {
        public let cutoff: String
        public let dry_run: Bool
        /// Runs older than the cutoff deleted, with their passes and forms.
        public let runs_deleted: Int
        /// Runs older than the cutoff kept: something still names them (a lead's archive, a
        /// watermark, a rejection, a void period's backfill, a snapshot the gap report reads,
        /// a connection's last run or last success).
        public let runs_kept: Int
        /// Form snapshots older than the cutoff that the gap report does not read.
        public let snapshots_deleted: Int
        /// Closed work-queue rounds older than the cutoff (server clock), with their items.
        public let work_rounds_deleted: Int
    }

    /// Deletes what old runs left that nothing reads any more, in one transaction, and
    /// records it in `prunes`. The gap report reads, of `form_snapshots`, each form's latest
    /// snapshot and, per void period, each form's last snapshot before its start and before
    /// its backfill: those stay, and so do their runs.
    public func prune(olderThan cutoff: Date, days: Int, now: Date, host: String, dryRun: Bool) async throws -> PruneOutcome {
        try await session.run { db in
            try db.transaction { db in
                let snapshots = try db.query("""
                    WITH needed AS (
                        SELECT DISTINCT ON (connection_id, form_id) run_id, connection_id, form_id FROM form_snapshots
                        ORDER BY connection_id, form_id, taken_at DESC, run_id DESC
                    ), before_period AS (
                        SELECT s.run_id, s.connection_id, s.form_id FROM void_periods v
                        CROSS JOIN LATERAL (SELECT DISTINCT ON (form_id) run_id, connection_id, form_id FROM form_snapshots s
                                            WHERE s.connection_id = v.connection_id AND s.taken_at <= v.started_at
                                            ORDER BY form_id, taken_at DESC, run_id DESC) s
                    ), before_backfill AS (
                        SELECT s.run_id, s.connection_id, s.form_id FROM void_periods v
                        CROSS JOIN LATERAL (SELECT DISTINCT ON (form_id) run_id, connection_id, form_id FROM form_snapshots s
                                            WHERE s.connection_id = v.connection_id AND s.taken_at <= v.backfilled_at
                                            ORDER BY form_id, taken_at DESC, run_id DESC) s
                        WHERE v.backfilled_at IS NOT NULL
                    ), gone AS (
                        DELETE FROM form_snapshots s WHERE s.taken_at < $1
                          AND (s.run_id, s.connection_id, s.form_id) NOT IN (SELECT * FROM needed UNION SELECT * FROM before_period
                                                                            UNION SELECT * FROM before_backfill)
                        RETURNING 1
                    )
                    SELECT count(*) FROM gone
                    """, [cutoff], label: "prune form snapshots")[0].int(0) ?? 0
                // Every lead names the runs that first and last loaded it, without a foreign
                // key; each of those runs wrote the archive the lead pointed at then, and
                // archive rows are never deleted, so a run kept for its archive covers them.
                let runs = try db.query("""
                    WITH old AS (SELECT id FROM runs WHERE status <> 'running' AND started_at < $1),
                    latest AS (
                        SELECT DISTINCT ON (connection_id) run_id FROM run_passes ORDER BY connection_id, run_id DESC
                    ), latest_success AS (
                        SELECT DISTINCT ON (connection_id) run_id FROM run_passes WHERE state = 'loaded' ORDER BY connection_id, run_id DESC
                    ), doomed AS (
                        SELECT id FROM old r
                        WHERE NOT EXISTS (SELECT 1 FROM archives a WHERE a.run_id = r.id)
                          AND NOT EXISTS (SELECT 1 FROM lead_rejections x WHERE x.run_id = r.id)
                          AND NOT EXISTS (SELECT 1 FROM watermarks w WHERE w.run_id = r.id)
                          AND NOT EXISTS (SELECT 1 FROM forms f WHERE f.first_seen_run_id = r.id OR f.last_seen_run_id = r.id)
                          AND NOT EXISTS (SELECT 1 FROM void_periods v WHERE v.backfill_run_id = r.id)
                          AND NOT EXISTS (SELECT 1 FROM backfill_windows b WHERE b.run_id = r.id)
                          AND NOT EXISTS (SELECT 1 FROM auth_events e WHERE e.run_id = r.id)
                          AND NOT EXISTS (SELECT 1 FROM form_snapshots s WHERE s.run_id = r.id)
                          AND r.id NOT IN (SELECT run_id FROM latest UNION SELECT run_id FROM latest_success)
                    ), gone AS (
                        DELETE FROM runs WHERE id IN (SELECT id FROM doomed) RETURNING 1
                    )
                    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM old)
                    """, [cutoff], label: "prune runs")[0]
                let deleted = try runs.int(0) ?? 0
                let kept = (try runs.int(1) ?? 0) - deleted
                // The work queue keeps the server's clock, not the run's (leases are real time).
                let rounds = try db.query("""
                    WITH gone AS (
                        DELETE FROM work_rounds WHERE closed_at IS NOT NULL AND closed_at < clock_timestamp() - make_interval(days => $1)
                        RETURNING 1
                    )
                    SELECT count(*) FROM gone
                    """, [days], label: "prune work rounds")[0].int(0) ?? 0
                let outcome = PruneOutcome(cutoff: UTCTime.iso8601(cutoff), dry_run: dryRun, runs_deleted: deleted, runs_kept: kept,
                                           snapshots_deleted: snapshots, work_rounds_deleted: rounds)
                if dryRun { throw DryRun(outcome: outcome) }
                try db.query("""
                    INSERT INTO prunes (kind, cutoff, pruned_at, host, removed, kept, details)
                    VALUES ('runs', $1, $2, $3, $4, $5, jsonb_build_object('form_snapshots', $6::int, 'work_rounds', $7::int))
                    """, [cutoff, now, host, deleted, kept, snapshots, rounds], label: "record prune")
                return outcome
            }
        }
    }

    /// A dry run counts inside the transaction, then rolls it back by throwing this.
    struct DryRun: Error {
        let outcome: PruneOutcome
    }
}

extension RunHistoryStore {
    /// `prune`, but a dry run returns its counts instead of failing.
    public func pruneRuns(olderThan cutoff: Date, days: Int, now: Date, host: String, dryRun: Bool) async throws -> PruneOutcome {
        do {
            return try await prune(olderThan: cutoff, days: days, now: now, host: host, dryRun: dryRun)
        } catch let dry as DryRun {
            return dry.outcome
        }
    }
}

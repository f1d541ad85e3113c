import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// A running total of `metric_totals`: its name and its one label's value.
struct MetricTotalKey: Hashable {
    let name: String
    let label: String
}

/// Runs, forms, watermarks, archives and leads in Postgres.
public struct LeadStore: LeadRepository {
    /// Every query runs on the session's own thread, never on the cooperative pool.
    let session: PostgresSession
    private let staging = StagingTable()

    public init(_ session: PostgresSession) {
        self.session = session
    }

    /// The session's staging table, created once per session (outside any window's
    /// transaction, so a rolled-back window cannot take it along) and emptied at every
    /// commit. A table created and dropped per window cost catalog rows each time: over
    /// thousands of windows the bloated catalog slowed every worker down. Read and set on
    /// the session's thread only.
    final class StagingTable: @unchecked Sendable {
        var ready = false
    }

    private func prepareStaging(_ db: PostgresConnection) throws {
        guard !staging.ready else { return }
        if try db.query("SELECT to_regclass('pg_temp.lead_stage') IS NULL", label: "staging table exists")[0].bool(0) == true {
            try db.execute(raw: RawSQL(label: "staging table", """
                CREATE TEMP TABLE lead_stage (LIKE leads INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
                ALTER TABLE lead_stage ALTER COLUMN archive_id DROP NOT NULL, ALTER COLUMN first_run_id DROP NOT NULL,
                    ALTER COLUMN last_run_id DROP NOT NULL, ALTER COLUMN loaded_at DROP NOT NULL, ALTER COLUMN updated_at DROP NOT NULL
                """))
        }
        staging.ready = true
    }


    public func startRun(kind: RunKind, pipeline: String, host: String, processID: Int32, startedAt: Date, upperBound: Date,
                         lease: Duration) async throws -> Int64 {
        try await session.run { db in
            Int64(try db.query("""
                INSERT INTO runs (kind, pipeline, host, worker_id, started_at, upper_bound, lease_until)
                VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp() + $7 * interval '1 millisecond') RETURNING id
                """, [kind.rawValue, pipeline, host, "pid:\(processID)", startedAt, upperBound, lease.milliseconds], label: "start run")[0].int(0)!)
        }
    }

    public func renewRunLease(_ runID: Int64, lease: Duration) async throws {
        try await session.run { db in
            _ = try db.query("""
                UPDATE runs SET lease_until = clock_timestamp() + $2 * interval '1 millisecond' WHERE id = $1 AND status = 'running'
                """, [runID, lease.milliseconds], label: "renew run lease")
        }
    }

    public func finishRun(_ runID: Int64, status: RunStatus, counters: [String: Int], at: Date) async throws {
        try await finishRun(runID, status: status, counters: counters, passes: [], at: at)
    }

    public func finishRun(_ runID: Int64, status: RunStatus, counters: [String: Int], passes: [RunPassRecord], at: Date) async throws {
        let counterJSON = String(decoding: try JSONSerialization.data(withJSONObject: counters, options: [.sortedKeys]), as: UTF8.self)
        let (passJSON, formJSON) = try Self.passDocuments(passes)
        let totals = Self.totals(passes, kind: nil, status: status)
        try await session.run { db in
            try db.transaction { db in
                let kind = try db.query("""
                    UPDATE runs SET status = $2, counters = $3::jsonb, failures = $4, finished_at = greatest($5, started_at) WHERE id = $1
                    RETURNING kind
                    """, [runID, status.rawValue, counterJSON, passes.filter(\.failed).count, at], label: "finish run").all.first?.string(0)
                if !passes.isEmpty {
                    // Ids first, so each form row can name its pass without a round trip per pass.
                    let ids = try db.query("SELECT nextval(pg_get_serial_sequence('run_passes', 'id')) FROM generate_series(1, $1)",
                                           [passes.count], label: "run pass ids").all.map { Int64(try $0.int(0)!) }
                    let idJSON = "[" + ids.map(String.init).joined(separator: ",") + "]"
                    try db.query("""
                        INSERT INTO run_passes (id, run_id, connection_id, job, void_period_id, state, detail, pages, inserted, updated,
                                                unchanged, rejected, erased, graph_requests, graph_errors, rate_limit_waits,
                                                rate_limit_wait_seconds, preflight_seconds, extract_seconds, archive_seconds, load_seconds,
                                                archive_id)
                        OVERRIDING SYSTEM VALUE
                        SELECT (ids.id #>> '{}')::bigint, $1, (p->>'connection_id')::bigint, p->>'job', (p->>'void_period_id')::bigint,
                               p->>'state', p->>'detail', (p->>'pages')::int, (p->>'inserted')::int, (p->>'updated')::int,
                               (p->>'unchanged')::int, (p->>'rejected')::int, (p->>'erased')::int, (p->>'graph_requests')::int,
                               p->'graph_errors', (p->>'rate_limit_waits')::int, (p->>'rate_limit_wait_seconds')::float8,
                               (p->>'preflight_seconds')::float8, (p->>'extract_seconds')::float8, (p->>'archive_seconds')::float8,
                               (p->>'load_seconds')::float8, (p->>'archive_id')::bigint
                        FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS pass(p, n)
                        JOIN jsonb_array_elements($3::jsonb) WITH ORDINALITY AS ids(id, n) USING (n)
                        """, [runID, passJSON, idJSON], label: "record run passes")
                    try db.query("""
                        INSERT INTO run_forms (pass_id, form_id, window_from, window_to, pages, leads, inserted, updated, unchanged, rejected,
                                               graph_requests, graph_errors, error_code, error)
                        SELECT (($2::jsonb) ->> ((f->>'pass')::int))::bigint, f->>'form_id', (f->>'window_from')::timestamptz,
                               (f->>'window_to')::timestamptz, (f->>'pages')::int, (f->>'leads')::int, (f->>'inserted')::int,
                               (f->>'updated')::int, (f->>'unchanged')::int, (f->>'rejected')::int, (f->>'graph_requests')::int,
                               f->'graph_errors', f->>'error_code', f->>'error'
                        FROM jsonb_array_elements($1::jsonb) AS f
                        ON CONFLICT (pass_id, form_id) DO NOTHING
                        """, [formJSON, idJSON], label: "record run forms")
                }
                let all = totals.merging(Self.totals([], kind: kind ?? nil, status: status)) { $0 + $1 }
                try Self.addTotals(all, db)
            }
        }
    }

    /// The passes and their forms as two JSON arrays for the insert above; a form names its
    /// pass by position.
    static func passDocuments(_ passes: [RunPassRecord]) throws -> (passes: String, forms: String) {
        var passObjects: [[String: Any]] = []
        var formObjects: [[String: Any]] = []
        for (index, pass) in passes.enumerated() {
            var object: [String: Any] = [
                "connection_id": pass.connectionID, "job": pass.job, "state": pass.state, "pages": pass.pages,
                "inserted": pass.counts.inserted, "updated": pass.counts.updated, "unchanged": pass.counts.unchanged,
                "rejected": pass.counts.rejected, "erased": pass.counts.erased, "graph_requests": pass.graph.requests,
                "graph_errors": pass.graph.errors, "rate_limit_waits": pass.graph.rateLimitWaits,
                "rate_limit_wait_seconds": pass.graph.rateLimitWaitSeconds, "preflight_seconds": pass.seconds.preflight,
                "extract_seconds": pass.seconds.extract, "archive_seconds": pass.seconds.archive, "load_seconds": pass.seconds.load,
            ]
            object["void_period_id"] = pass.voidPeriodID
            object["detail"] = pass.detail
            object["archive_id"] = pass.archiveID
            passObjects.append(object)
            for form in pass.forms {
                var entry: [String: Any] = [
                    "pass": index, "form_id": form.formID, "pages": form.pages, "leads": form.leads, "inserted": form.counts.inserted,
                    "updated": form.counts.updated, "unchanged": form.counts.unchanged, "rejected": form.counts.rejected,
                    "graph_requests": form.graph.requests, "graph_errors": form.graph.errors,
                ]
                entry["window_from"] = form.window?.from.map(UTCTime.iso8601)
                entry["window_to"] = form.window.map { UTCTime.iso8601($0.to) }
                entry["error_code"] = form.errorCode
                entry["error"] = form.error
                formObjects.append(entry)
            }
        }
        let text = { (value: Any) in String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self) }
        return (try text(passObjects), try text(formObjects))
    }

    /// What a run adds to the running totals (`metric_totals`), keyed by name and label.
    static func totals(_ passes: [RunPassRecord], kind: String?, status: RunStatus) -> [MetricTotalKey: Double] {
        var totals: [MetricTotalKey: Double] = [:]
        func add(_ name: String, _ label: String = "", _ value: Double) {
            if value > 0 { totals[MetricTotalKey(name: name, label: label), default: 0] += value }
        }
        for pass in passes {
            add("leads_inserted", pass.instance, Double(pass.counts.inserted))
            add("leads_updated", pass.instance, Double(pass.counts.updated))
            add("leads_unchanged", pass.instance, Double(pass.counts.unchanged))
            add("leads_rejected", pass.instance, Double(pass.counts.rejected))
            add("graph_requests", "", Double(pass.graph.requests))
            for (code, count) in pass.graph.errors { add("graph_errors", code, Double(count)) }
            add("rate_limit_waits", "", Double(pass.graph.rateLimitWaits))
            add("rate_limit_wait_seconds", "", pass.graph.rateLimitWaitSeconds)
            if let bytes = pass.archiveBytes {
                add("archives_written", "", 1)
                add("archive_bytes_written", "", Double(bytes))
            }
        }
        if let kind { add("runs_\(status.rawValue)", kind, 1) }
        return totals
    }

    static func addTotals(_ totals: [MetricTotalKey: Double], _ db: PostgresConnection) throws {
        guard !totals.isEmpty else { return }
        let keys = totals.keys.sorted { ($0.name, $0.label) < ($1.name, $1.label) }
        try db.query("""
            INSERT INTO metric_totals (name, label, value)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[]::float8[])
            ON CONFLICT (name, label) DO UPDATE SET value = metric_totals.value + EXCLUDED.value
            """, [keys.map(\.name), keys.map(\.label), keys.map { String(totals[$0]!) }], label: "add to metric totals")
    }

    public func countAlreadyLoaded(instance: String, leadIDs: [String], hashes: [String], rejectedLeadIDs: [String],
                                   rejectedHashes: [String]) async throws -> Int {
        try await session.run { db in
            try db.query("""
                SELECT (SELECT count(*) FROM unnest($2::text[], $3::text[]) AS r(lead_id, raw_sha256)
                        WHERE EXISTS (SELECT 1 FROM leads l WHERE l.instance = $1 AND l.lead_id = r.lead_id AND l.raw_sha256 = r.raw_sha256))
                     + (SELECT count(*) FROM unnest($4::text[], $5::text[]) AS r(lead_id, raw_sha256)
                        WHERE EXISTS (SELECT 1 FROM lead_rejections x
                                      WHERE x.instance = $1 AND x.lead_id = r.lead_id AND x.raw_sha256 = r.raw_sha256))
                """, [instance, leadIDs, hashes, rejectedLeadIDs, rejectedHashes], label: "leads already loaded")[0].int(0) ?? 0
        }
    }

    public func runningRuns() async throws -> [RunningRun] {
        try await session.run { db in
            try db.query("""
                SELECT id, host, worker_id, coalesce(lease_until < clock_timestamp(), false) FROM runs WHERE status = 'running' ORDER BY id
                """, label: "running runs").all.map { row in
                let worker = try row.string(2)
                return RunningRun(id: Int64(try row.int(0)!), host: try row.string(1)!,
                                  processID: worker.flatMap { $0.hasPrefix("pid:") ? Int32($0.dropFirst(4)) : nil },
                                  leaseLapsed: try row.bool(3) ?? false)
            }
        }
    }

    public func runsToSweep() async throws -> [Int64] {
        try await session.run { db in
            try db.query("SELECT id FROM runs WHERE status IN ('failed', 'abandoned') AND swept_at IS NULL ORDER BY id",
                         label: "runs to sweep").all.map { Int64(try $0.int(0)!) }
        }
    }

    public func markSwept(_ runIDs: [Int64], at: Date) async throws {
        guard !runIDs.isEmpty else { return }
        try await session.run { db in
            _ = try db.query("UPDATE runs SET swept_at = greatest($2, started_at) WHERE id = ANY($1::bigint[])",
                             [runIDs.map(String.init), at], label: "mark runs swept")
        }
    }

    public func archivePaths() async throws -> [String: Bool] {
        try await session.run { db in
            Dictionary(try db.query("SELECT path, superseded_by IS NOT NULL FROM archives", label: "archive paths").all.map {
                (try $0.string(0)!, try $0.bool(1) ?? false)
            }, uniquingKeysWith: { first, _ in first })
        }
    }

    public func tryLockErasures() async throws -> Bool {
        try await session.run { db in
            try db.query("SELECT pg_try_advisory_lock($1, 0)", [Int(ErasureStore.erasureLockSpace)], label: "try the erasure lock")[0].bool(0) ?? false
        }
    }

    public func unlockErasures() async throws {
        try await session.run { db in
            _ = try db.query("SELECT pg_advisory_unlock($1, 0)", [Int(ErasureStore.erasureLockSpace)], label: "unlock erasures")
        }
    }

    public func abandonRun(_ runID: Int64, at: Date) async throws {
        try await session.run { db in
            _ = try db.query("UPDATE runs SET status = 'abandoned', finished_at = greatest($2, started_at) WHERE id = $1 AND status = 'running'",
                         [runID, at], label: "abandon run")
        }
    }

    public func acquireConnection(_ connectionID: Int64, holder: String, lease: Duration) async throws -> ConnectionLease? {
        try await session.run { db in
            let rows = try db.query("""
                INSERT INTO connection_leases AS l (connection_id, holder, fence, lease_until, taken_at)
                VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond', clock_timestamp())
                ON CONFLICT (connection_id) DO UPDATE
                    SET holder = EXCLUDED.holder, fence = l.fence + 1, lease_until = EXCLUDED.lease_until, taken_at = EXCLUDED.taken_at
                    WHERE l.lease_until < clock_timestamp()
                RETURNING fence
                """, [connectionID, holder, lease.milliseconds], label: "take connection lease")
            guard rows.count == 1 else { return nil }
            return ConnectionLease(connectionID: connectionID, holder: holder, fence: Int64(try rows[0].int(0)!), lease: lease)
        }
    }

    public func renewConnection(_ lease: ConnectionLease) async throws -> Bool {
        try await session.run { db in
            try db.query("""
                UPDATE connection_leases SET lease_until = clock_timestamp() + $4 * interval '1 millisecond'
                WHERE connection_id = $1 AND fence = $2 AND holder = $3 AND lease_until >= clock_timestamp()
                """, [lease.connectionID, lease.fence, lease.holder, lease.lease.milliseconds], label: "renew connection lease").affectedRows == 1
        }
    }

    public func releaseConnection(_ lease: ConnectionLease) async throws {
        try await session.run { db in
            _ = try db.query("""
                UPDATE connection_leases SET lease_until = clock_timestamp() - interval '1 millisecond'
                WHERE connection_id = $1 AND fence = $2 AND holder = $3
                """, [lease.connectionID, lease.fence, lease.holder], label: "release connection lease")
        }
    }

    /// Inside a window's transaction: the connection's lease is still this pass's (same
    /// fence, not lapsed), and is renewed; its row stays locked until the commit, so no
    /// other holder takes it over while the window commits.
    static func checkLease(_ lease: ConnectionLease, in db: PostgresConnection) throws {
        let held = try db.query("""
            UPDATE connection_leases SET lease_until = greatest(lease_until, clock_timestamp() + $4 * interval '1 millisecond')
            WHERE connection_id = $1 AND fence = $2 AND holder = $3 AND lease_until >= clock_timestamp()
            """, [lease.connectionID, lease.fence, lease.holder, lease.lease.milliseconds], label: "check connection lease").affectedRows == 1
        guard held else { throw LeaseLost(connectionID: lease.connectionID) }
    }

    public func formIDs(connectionID: Int64) async throws -> [String] {
        try await session.run { db in
            try db.query("SELECT form_id FROM forms WHERE connection_id = $1 ORDER BY form_id", [connectionID],
                         label: "known forms").all.map { try $0.string(0)! }
        }
    }

    public func watermarks(connectionID: Int64) async throws -> [String: Date] {
        try await session.run { db in
            var marks: [String: Date] = [:]
            for row in try db.query("SELECT form_id, high_water FROM watermarks WHERE connection_id = $1", [connectionID],
                                    label: "read watermarks").all {
                marks[try row.string(0)!] = try row.date(1)
            }
            return marks
        }
    }

    public func reconciliations(instance: String, formIDs: [String]) async throws -> [String: FormReconciliation] {
        guard !formIDs.isEmpty else { return [:] }
        return try await session.run { db in
            var found: [String: FormReconciliation] = [:]
            for row in try db.query("""
                SELECT form_id, checked_at, facebook_count, held, short_since, reread_at, deepest_reread_at FROM form_reconciliations
                WHERE instance = $1 AND form_id = ANY($2)
                """, [instance, formIDs], label: "read reconciliations").all {
                let formID = try row.string(0)!
                found[formID] = FormReconciliation(formID: formID, checkedAt: try row.date(1)!, facebook: try row.int(2)!, held: try row.int(3)!,
                                                   shortSince: try row.date(4), rereadAt: try row.date(5), deepestRereadAt: try row.date(6))
            }
            return found
        }
    }

    public func heldCounts(instance: String, formIDs: [String]) async throws -> [String: Int] {
        guard !formIDs.isEmpty else { return [:] }
        return try await session.run { db in
            var held: [String: Int] = [:]
            for row in try db.query("""
                SELECT f.id,
                       (SELECT count(*) FROM leads l WHERE l.instance = $1 AND l.form_id = f.id)
                     + (SELECT count(DISTINCT r.lead_id) FROM lead_rejections r
                        WHERE r.instance = $1 AND r.form_id = f.id AND r.lead_id IS NOT NULL
                          AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.instance = $1 AND l.lead_id = r.lead_id))
                     -- A lead too malformed to have an id is still one Facebook counts: once per payload.
                     + (SELECT count(DISTINCT r.raw_sha256) FROM lead_rejections r
                        WHERE r.instance = $1 AND r.form_id = f.id AND r.lead_id IS NULL)
                     + (SELECT count(*) FROM withheld_leads w
                        WHERE w.instance = $1 AND w.form_id = f.id
                          AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.instance = $1 AND l.lead_id = w.lead_id)
                          AND NOT EXISTS (SELECT 1 FROM lead_rejections r WHERE r.instance = $1 AND r.lead_id = w.lead_id))
                FROM unnest($2::text[]) AS f(id)
                """, [instance, formIDs], label: "count held leads").all {
                held[try row.string(0)!] = try row.int(1) ?? 0
            }
            return held
        }
    }

    public func saveReconciliation(_ reconciliation: FormReconciliation, instance: String, connectionID: Int64) async throws {
        try await session.run { db in
            _ = try db.query("""
                INSERT INTO form_reconciliations (instance, form_id, connection_id, checked_at, facebook_count, held, short_since, reread_at,
                                                  deepest_reread_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (instance, form_id) DO UPDATE SET connection_id = EXCLUDED.connection_id, checked_at = EXCLUDED.checked_at,
                    facebook_count = EXCLUDED.facebook_count, held = EXCLUDED.held, short_since = EXCLUDED.short_since,
                    reread_at = EXCLUDED.reread_at, deepest_reread_at = EXCLUDED.deepest_reread_at
                """, [instance, reconciliation.formID, connectionID, reconciliation.checkedAt, reconciliation.facebook, reconciliation.held,
                      reconciliation.shortSince, reconciliation.rereadAt, reconciliation.deepestRereadAt], label: "save reconciliation")
        }
    }

    public func saveForms(_ forms: [GraphForm], connectionID: Int64, runID: Int64, at: Date) async throws {
        try await session.run { db in
            try db.transaction { db in
                for form in forms {
                    try db.query("""
                        INSERT INTO forms (connection_id, form_id, name, status, locale, created_time, first_seen_run_id, last_seen_run_id)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                        ON CONFLICT (connection_id, form_id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status,
                            locale = EXCLUDED.locale, last_seen_run_id = EXCLUDED.last_seen_run_id
                        """, [connectionID, form.id, form.name, Self.formStatus(form.status), form.locale,
                              form.createdTime.flatMap(UTCTime.parse), runID], label: "save form")
                    try db.query("""
                        INSERT INTO form_snapshots (run_id, connection_id, form_id, taken_at, leads_count, organic_leads_count, expired_leads_count)
                        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id, connection_id, form_id) DO NOTHING
                        """, [runID, connectionID, form.id, at, form.leadsCount ?? 0, form.organicLeadsCount ?? 0, form.expiredLeadsCount ?? 0],
                        label: "snapshot form")
                }
            }
        }
    }

    /// Graph's statuses as the schema knows them; anything new is kept as ACTIVE rather than lost.
    static func formStatus(_ status: String) -> String {
        ["ACTIVE", "ARCHIVED", "DELETED", "DRAFT"].contains(status) ? status : "ACTIVE"
    }

    public func saveArchive(_ archive: ArchivedRun, runID: Int64, connectionID: Int64, windowFrom: Date?, windowTo: Date, at: Date) async throws -> Int64 {
        try await session.run { db in
            Int64(try db.query("""
                INSERT INTO archives (run_id, connection_id, path, sha256, bytes, members, window_from, window_to, created_at, verified_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id
                """, [runID, connectionID, archive.path, archive.sha256, archive.bytes, archive.members, windowFrom, windowTo, at],
                label: "save archive")[0].int(0)!)
        }
    }

    /// Above this many leads of the window already in the table, the window goes through
    /// staging at once (the set of their ids would cost memory, and most would be rewritten
    /// through staging anyway).
    static let directLoadLimit = 200_000

    public func loadWindow(_ batch: WindowBatch) async throws -> LoadCounts {
        try await session.run { db in
            try prepareStaging(db)
            do {
                return try db.transaction { db in try loadWindow(db, batch, direct: true) }
            } catch let error as PostgresError where error.sqlState == "23505" {
                // A new lead of this window was in the table after all (under another form, or
                // twice in the window): the whole window again, through staging.
                return try db.transaction { db in try loadWindow(db, batch, direct: false) }
            }
        }
    }

    /// One window in one transaction. Rows the table does not hold yet are copied straight
    /// into `leads` (as fast as `COPY` goes); rows it may hold (leads of the window loaded
    /// before: the overlap's re-reads) go through the staging table and an upsert that
    /// rewrites a row only when something changed. With `direct` false, every row is staged.
    private func loadWindow(_ db: PostgresConnection, _ batch: WindowBatch, direct: Bool) throws -> LoadCounts {
        if let claim = batch.claim { try WorkQueueStore.checkFence(claim, in: db) }
        if let lease = batch.lease { try Self.checkLease(lease, in: db) }
        var counts = LoadCounts()
        if let rows = batch.rows, batch.rowCount > 0 {
            guard let archiveID = batch.archiveID else { throw UnarchivedRows(formID: batch.formID) }
            // Leads of this instance and form created around the window: the ones a re-read
            // may bring again. A day either side covers Graph's rounding of its time filter.
            var known: Set<String>? = nil
            if direct {
                let found = try db.query("""
                    SELECT lead_id FROM leads WHERE instance = $1 AND form_id = $2 AND created_at >= $3 AND created_at < $4 LIMIT $5
                    """, [batch.instance, batch.formID,
                          batch.window.from.map { $0.addingTimeInterval(-86_400) } ?? Date(timeIntervalSince1970: 0),
                          batch.window.to.addingTimeInterval(86_400), Self.directLoadLimit + 1],
                    label: "leads of the window already loaded")
                if found.count <= Self.directLoadLimit { known = Set(try found.all.map { try $0.string(0)! }) }
            }
            let stamp = Array(("\t\(archiveID)\t\(batch.runID)\t\(batch.runID)\t\(UTCTime.iso8601(batch.at))\t\(UTCTime.iso8601(batch.at))").utf8)
            let columns = LeadRow.names.joined(separator: ", ")
            var sawKnown = false
            if let known {
                counts.inserted = try db.copyIn("COPY leads (\(columns), \(LeadRow.stampedColumns.joined(separator: ", "))) FROM STDIN",
                                                label: "copy new leads") { writer in
                    try Self.eachRow(of: rows) { row in
                        if !known.isEmpty, known.contains(Self.leadID(of: row)) {
                            sawKnown = true
                            return
                        }
                        try writer.appendRaw(row, then: stamp)
                    }
                    // Every row sent, the COPY not yet ended: a kill here is a kill in COPY.
                    DebugKill.point(DebugKill.copy)
                }
            }
            if known == nil || sawKnown {
                // Second pass (or the only one): the rows that may already be there, staged.
                try db.copyIn("COPY lead_stage (\(columns)) FROM STDIN", label: "copy leads to stage") { writer in
                    try Self.eachRow(of: rows) { row in
                        if let known, !known.contains(Self.leadID(of: row)) { return }
                        try writer.appendRaw(row, then: [])
                    }
                    DebugKill.point(DebugKill.copy)
                }
                let distinct = try db.query("SELECT count(DISTINCT lead_id) FROM lead_stage", label: "count staged")[0].int(0) ?? 0
                let upserted = try upsertStaged(db, archiveID: archiveID, runID: batch.runID, at: batch.at)
                counts.inserted += upserted.inserted
                counts.updated = upserted.updated
                counts.unchanged = distinct - upserted.inserted - upserted.updated
            }
        }
        if !batch.rejections.isEmpty {
            try db.copyIn("""
                COPY lead_rejections (run_id, connection_id, instance, form_id, lead_id, created_at, reasons, raw_sha256, archive_id, rejected_at) FROM STDIN
                """, label: "copy rejections") { writer in
                for spooled in batch.rejections {
                    let rejection = spooled.rejection
                    try writer.appendRow([String(batch.runID), String(batch.connectionID), batch.instance, batch.formID, rejection.leadID,
                                          rejection.createdAt.map(UTCTime.iso8601), rejection.reasons.postgresText, spooled.rawSHA256,
                                          batch.archiveID.map(String.init), UTCTime.iso8601(batch.at)])
                }
            }
        }
        counts.rejected = batch.rejections.count
        if !batch.withheld.isEmpty {
            try db.query("""
                INSERT INTO withheld_leads (instance, form_id, lead_id, reason, withheld_at)
                SELECT $1, $2, id, 'erased', $4 FROM unnest($3::text[]) AS id WHERE id ~ '^[0-9]+$'
                ON CONFLICT (instance, lead_id) DO NOTHING
                """, [batch.instance, batch.formID, batch.withheld, batch.at], label: "record withheld leads")
        }
        switch batch.commit {
        case .watermark(let newest):
            guard let newest else { break }
            // Forward only, and in the same transaction as the rows it covers.
            try db.query("""
                INSERT INTO watermarks (connection_id, form_id, high_water, run_id, updated_at) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (connection_id, form_id) DO UPDATE
                    SET high_water = greatest(watermarks.high_water, EXCLUDED.high_water), run_id = EXCLUDED.run_id,
                        updated_at = EXCLUDED.updated_at
                """, [batch.connectionID, batch.formID, newest, batch.runID, batch.at], label: "move watermark")
        case .backfill(let voidPeriodID, let window):
            try db.query("""
                INSERT INTO backfill_windows (void_period_id, connection_id, form_id, window_from, window_to, run_id, committed_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (void_period_id, form_id) DO UPDATE SET run_id = EXCLUDED.run_id, committed_at = EXCLUDED.committed_at
                """, [voidPeriodID, batch.connectionID, batch.formID, window.from, window.to, batch.runID, batch.at],
                label: "record backfill window")
        case .leadsOnly:
            break
        }
        // Every statement of the window done, its COMMIT not yet sent.
        DebugKill.point(DebugKill.commit)
        return counts
    }

    /// Calls `body` with each row of a spooled rows file (its newline left out), reading the
    /// file in chunks: the window is never in memory whole.
    static func eachRow(of file: URL, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var carry: [UInt8] = []
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            carry.append(contentsOf: chunk)
            let consumed = try carry.withUnsafeBytes { bytes -> Int in
                var start = 0
                while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    try body(UnsafeRawBufferPointer(rebasing: bytes[start..<newline]))
                    start = newline + 1
                }
                return start
            }
            carry.removeFirst(consumed)
        }
        guard carry.isEmpty else { throw SpoolError(file: file.lastPathComponent) }
    }

    /// Rows handed to the load without the archive that holds their raw leads: a programming
    /// error, refused before anything is written (a lead never points at no archive).
    struct UnarchivedRows: LeadFlowError {
        let formID: String
        var code: String { "store.rows_without_archive" }
        var disposition: Disposition { .fatal }
        var description: String { "\(code): the rows of form \(formID) came without their archive" }
    }

    /// A spooled rows file that does not end with a whole row: a run cut short while writing it.
    struct SpoolError: LeadFlowError {
        let file: String
        var code: String { "store.spool_truncated" }
        var disposition: Disposition { .fatal }
        var description: String { "\(code): the spooled rows \(file) end in the middle of a row" }
    }

    /// A row's lead id: its first field (digits, never escaped).
    static func leadID(of row: UnsafeRawBufferPointer) -> String {
        String(decoding: CopyText.firstField(of: row), as: UTF8.self)
    }

    /// Rows of the staging table into `leads`: inserted, or rewritten when something changed.
    private func upsertStaged(_ db: PostgresConnection, archiveID: Int64, runID: Int64, at: Date) throws -> (inserted: Int, updated: Int) {
        let columns = LeadRow.names.joined(separator: ", ")
        let keys: Set<String> = ["instance", "lead_id"]
        let assignments = LeadRow.names.filter { !keys.contains($0) }.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let compared = LeadRow.names.filter { !keys.contains($0) }
        let result = try db.query("""
            WITH upserted AS (
                INSERT INTO leads AS l (\(columns), archive_id, first_run_id, last_run_id, loaded_at, updated_at)
                SELECT DISTINCT ON (s.instance, s.lead_id) \(LeadRow.names.map { "s.\($0)" }.joined(separator: ", ")), $1, $2, $2, $3, $3
                FROM lead_stage s
                ORDER BY s.instance, s.lead_id
                ON CONFLICT (instance, lead_id) DO UPDATE SET \(assignments), archive_id = EXCLUDED.archive_id,
                    last_run_id = EXCLUDED.last_run_id, updated_at = EXCLUDED.updated_at
                WHERE (\(compared.map { "l.\($0)" }.joined(separator: ", "))) IS DISTINCT FROM (\(compared.map { "EXCLUDED.\($0)" }.joined(separator: ", ")))
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted
            """, [archiveID, runID, at], label: "upsert leads")[0]
        return (try result.int(0) ?? 0, try result.int(1) ?? 0)
    }

    public func erasureHashes(instance: String) async throws -> [String: Set<String>] {
        try await session.run { db in
            var byKey: [String: Set<String>] = [:]
            for row in try db.query("SELECT key_id, subject_hash FROM erasures WHERE instance IS NULL OR instance = $1", [instance],
                                    label: "erasure tombstones").all {
                byKey[try row.string(0)!, default: []].insert(try row.string(1)!)
            }
            return byKey
        }
    }

    public func voidPeriodsAwaitingBackfill(connectionID: Int64) async throws -> [VoidPeriod] {
        try await session.run { db in
            try db.query("""
                SELECT id, cause, cause_detail, started_at, ended_at FROM void_periods
                WHERE connection_id = $1 AND ended_at IS NOT NULL AND backfilled_at IS NULL ORDER BY started_at
                """, [connectionID], label: "void periods awaiting backfill").all.map(VoidPeriod.init(row:))
        }
    }

    public func backfilledForms(voidPeriodID: Int64) async throws -> Set<String> {
        try await session.run { db in
            Set(try db.query("SELECT form_id FROM backfill_windows WHERE void_period_id = $1", [voidPeriodID],
                             label: "backfilled forms").all.map { try $0.string(0)! })
        }
    }

    /// Marks the period backfilled and, in the same transaction, writes its
    /// `connection.recovered` notification with the leads created inside it now loaded
    /// (the gap report's "recovered"). A period already marked writes nothing.
    public func markBackfilled(voidPeriodID: Int64, runID: Int64, at: Date) async throws {
        try await session.run { db in
            try db.transaction { db in
                let marked = try db.query("""
                    UPDATE void_periods SET backfill_run_id = $2, backfilled_at = greatest($3, ended_at) WHERE id = $1 AND backfilled_at IS NULL
                    RETURNING id, cause, cause_detail, started_at, ended_at, connection_id
                    """, [voidPeriodID, runID, at], label: "mark backfilled")
                guard marked.count == 1 else { return }
                let period = try VoidPeriod(row: marked[0])
                let connectionID = Int64(try marked[0].int(5)!)
                let recovered = try db.query("""
                    SELECT count(*) FROM leads WHERE connection_id = $1 AND created_at >= $2 AND created_at < $3
                    """, [connectionID, period.startedAt, period.endedAt ?? at], label: "count recovered leads")[0].int(0) ?? 0
                try Outbox.write(db, connectionID: connectionID, .connectionRecovered(period, recovered: recovered), at: at)
            }
        }
    }

}

import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// The rows behind the gap report, counted in SQL: leads recovered per void period, the
/// rise of `expired_leads_count` across it, what Facebook's counters say it still returns,
/// rejections by reason, daily lead counts. `GapReport.build` makes the report of them.
public struct GapStore {
    let db: PostgresConnection

    public init(_ db: PostgresConnection) {
        self.db = db
    }

    /// Rejections are counted once per lead: every overlap and backfill that re-reads a
    /// rejected lead records it again.
    /// - Parameters:
    ///   - instance: only this instance's connections (nil: all).
    ///   - timeZone: the zone whose days the daily lead counts are cut at (an IANA name, which
    ///     Postgres and Foundation both know): the report's timeline draws them in it.
    public func facts(instance: String?, now: Date, timeZone: String = "UTC") throws -> [GapFacts] {
        let connections = try db.query("""
            SELECT id, instance, label, page_id, page_name, authenticated_at, fb_expires_at, fb_data_access_expires_at,
                   authenticator_user_id, authenticator_name
            FROM connections WHERE $1::text IS NULL OR instance = $1 ORDER BY instance, label
            """, [instance], label: "gap connections")
        return try connections.all.map { row in
            let id = Int64(try row.int(0)!)
            var facts = GapFacts(instance: try row.string(1)!, label: try row.string(2)!, pageID: try row.string(3)!,
                                 pageName: try row.string(4), authenticatedAt: try row.date(5)!, facebookExpiresAt: try row.date(6),
                                 facebookDataAccessExpiresAt: try row.date(7))
            facts.authenticatorID = try row.string(8)
            facts.authenticatorName = try row.string(9)
            facts.cycleStarts = try db.query("""
                SELECT occurred_at FROM auth_events WHERE connection_id = $1 AND kind IN ('authenticated', 'reauthenticated')
                ORDER BY occurred_at
                """, [id], label: "gap cycles").all.map { try $0.date(0)! }
            facts.periods = try periods(connectionID: id, now: now)
            let totals = try db.query("""
                SELECT (SELECT count(*) FROM leads WHERE connection_id = $1),
                       (SELECT count(DISTINCT r.lead_id) FROM lead_rejections r
                        WHERE r.connection_id = $1 AND r.lead_id IS NOT NULL
                          AND NOT EXISTS (SELECT 1 FROM leads l WHERE l.instance = r.instance AND l.lead_id = r.lead_id)),
                       (SELECT sum(s.leads_count - s.expired_leads_count) FROM forms f
                        JOIN LATERAL (SELECT leads_count, expired_leads_count FROM form_snapshots s
                                      WHERE s.connection_id = f.connection_id AND s.form_id = f.form_id
                                      ORDER BY s.taken_at DESC, s.run_id DESC LIMIT 1) s ON true
                        WHERE f.connection_id = $1),
                       (SELECT max(taken_at) FROM form_snapshots WHERE connection_id = $1),
                       (SELECT sum(missing) FROM form_reconciliations WHERE connection_id = $1)
                """, [id], label: "gap totals")[0]
            facts.leadsLoaded = try totals.int(0) ?? 0
            facts.leadsRejectedOnly = try totals.int(1) ?? 0
            facts.facebookReturnable = try totals.int(2)
            facts.lastHealthyRunAt = try totals.date(3)
            facts.late = try totals.int(4) ?? 0
            for reason in try db.query("""
                SELECT reason, count(DISTINCT coalesce(lead_id, raw_sha256)) FROM lead_rejections, unnest(reasons) AS reason
                WHERE connection_id = $1 GROUP BY reason
                """, [id], label: "gap rejections").all {
                facts.rejected[try reason.string(0)!] = try reason.int(1) ?? 0
            }
            for day in try db.query("""
                SELECT date_trunc('day', created_at, $2), count(*) FROM leads WHERE connection_id = $1 GROUP BY 1
                """, [id, timeZone], label: "gap daily leads").all {
                facts.dailyLeads[try day.date(0)!] = try day.int(1) ?? 0
            }
            return facts
        }
    }

    /// Each void period with its recovered leads (created inside it, loaded now), its lost
    /// ones (per form, the rise of `expired_leads_count` from the last snapshot before the
    /// period to the last one at or before its backfill, or now), and the last healthy run
    /// before it with the daily lead rate of the four weeks before that run (which estimates
    /// what an open period holds; at least a day, so a young connection is not overstated).
    private func periods(connectionID: Int64, now: Date) throws -> [GapFacts.PeriodFacts] {
        try db.query("""
            SELECT v.id, v.cause, v.started_at, v.ended_at, v.backfilled_at,
                   (SELECT count(*) FROM leads l WHERE l.connection_id = v.connection_id
                       AND l.created_at >= v.started_at AND l.created_at < coalesce(v.ended_at, $2)),
                   (SELECT coalesce(sum(greatest(0, after.expired_leads_count - coalesce(before.expired_leads_count, after.expired_leads_count))), 0)
                    FROM forms f
                    JOIN LATERAL (SELECT expired_leads_count FROM form_snapshots s
                                  WHERE s.connection_id = f.connection_id AND s.form_id = f.form_id
                                    AND s.taken_at <= coalesce(v.backfilled_at, $2)
                                  ORDER BY s.taken_at DESC, s.run_id DESC LIMIT 1) after ON true
                    LEFT JOIN LATERAL (SELECT expired_leads_count FROM form_snapshots s
                                  WHERE s.connection_id = f.connection_id AND s.form_id = f.form_id AND s.taken_at <= v.started_at
                                  ORDER BY s.taken_at DESC, s.run_id DESC LIMIT 1) before ON true
                    WHERE f.connection_id = v.connection_id),
                   r.last_run,
                   (SELECT count(*) / greatest(extract(epoch FROM r.last_run - greatest(r.last_run - interval '28 days', min(l.created_at))) / 86400, 1)
                    FROM leads l WHERE l.connection_id = v.connection_id
                      AND l.created_at >= r.last_run - interval '28 days' AND l.created_at < r.last_run)
            FROM void_periods v
            CROSS JOIN LATERAL (SELECT max(taken_at) AS last_run FROM form_snapshots s
                                WHERE s.connection_id = v.connection_id AND s.taken_at <= v.started_at) r
            WHERE v.connection_id = $1 ORDER BY v.started_at
            """, [connectionID, now], label: "gap periods").all.map { row in
            GapFacts.PeriodFacts(id: Int64(try row.int(0)!), cause: VoidCause(rawValue: try row.string(1)!) ?? .tokenInvalidated,
                                 startedAt: try row.date(2)!, endedAt: try row.date(3), backfilledAt: try row.date(4),
                                 recovered: try row.int(5) ?? 0, lost: try row.int(6) ?? 0,
                                 lastRunBefore: try row.date(7), leadsPerDayBefore: try row.double(8) ?? 0)
        }
    }
}

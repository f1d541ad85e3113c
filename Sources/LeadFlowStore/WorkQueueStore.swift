import Foundation
import LeadFlowCore
import LeadFlowPostgres
import Synchronization

/// The work queue in Postgres (`work_rounds`, `work_items`). Every time here is the
/// server's `clock_timestamp()`: leases are real time even when a run's "now" is injected,
/// and workers on hosts with skewed clocks still agree on when a lease ends.
public struct WorkQueueStore: WorkQueue {
    /// Every query runs on the session's own thread, never on the cooperative pool.
    let session: PostgresSession

    public init(_ session: PostgresSession) {
        self.session = session
    }

    /// Advisory lock space for opening rounds (the other key is the kind's number).
    static let roundLockSpace: Int32 = 0x4C48

    public func joinRound(kind: String, workerID: String) async throws -> WorkRound {
        try await session.run { db in
            try db.transaction { db in
                try db.query("SELECT pg_advisory_xact_lock($1, $2)", [Int(Self.roundLockSpace), kind == "backfill" ? 2 : 1],
                             label: "lock rounds")
                let open = try db.query("""
                    SELECT id, extract(epoch FROM clock_timestamp() - opened_at)::float8 FROM work_rounds
                    WHERE kind = $1 AND closed_at IS NULL
                    """, [kind], label: "open round")
                if open.count == 1 {
                    let roundID = Int64(try open[0].int(0)!)
                    // A round whose items are all done but that was left open (a worker died
                    // between its last item and the close) is closed, and a fresh one opened.
                    try closeIfDone(db, roundID: roundID)
                }
                let stillOpen = try db.query("SELECT 1 FROM work_rounds WHERE kind = $1 AND closed_at IS NULL", [kind], label: "open round")
                if open.count == 1, stillOpen.count == 1 {
                    return WorkRound(id: Int64(try open[0].int(0)!), kind: kind, openedHere: false,
                                     ageAtJoin: .milliseconds(Int((try open[0].double(1) ?? 0) * 1000)))
                }
                let id = Int64(try db.query("INSERT INTO work_rounds (kind, opened_by) VALUES ($1, $2) RETURNING id",
                                            [kind, workerID], label: "open round")[0].int(0)!)
                try db.query("INSERT INTO work_items (round_id, connection_id) SELECT $1, id FROM connections ORDER BY id",
                             [id], label: "round items")
                try closeIfDone(db, roundID: id)
                return WorkRound(id: id, kind: kind, openedHere: true, ageAtJoin: .zero)
            }
        }
    }

    public func claim(in round: WorkRound, worker: WorkerSettings) async throws -> WorkClaim? {
        try await session.run { db in
            // SKIP LOCKED: workers claiming at the same instant take different items without
            // waiting for each other; an item inside another worker's window commit is skipped.
            // The choice is a scalar sub-select, evaluated once: as a joined subquery the planner
            // may rescan it for every row (a nested loop), and one UPDATE then claimed them all.
            let rows = try db.query("""
                UPDATE work_items
                SET state = 'claimed', worker_id = $2, host = $4, process_id = $5, fence = fence + 1, claims = claims + 1,
                    lease_until = clock_timestamp() + $3 * interval '1 millisecond', claimed_at = clock_timestamp()
                WHERE round_id = $1 AND connection_id = (
                    SELECT connection_id FROM work_items
                    WHERE round_id = $1 AND (state = 'pending' OR (state = 'claimed' AND lease_until < clock_timestamp()))
                    ORDER BY connection_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING connection_id, fence
                """, [round.id, worker.workerID, worker.lease.milliseconds, worker.host, worker.processID], label: "claim connection")
            guard rows.count <= 1 else { throw ClaimedMoreThanOne(count: rows.count) }
            guard rows.count == 1 else { return nil }
            return WorkClaim(roundID: round.id, connectionID: Int64(try rows[0].int(0)!), workerID: worker.workerID,
                             fence: Int64(try rows[0].int(1)!), lease: worker.lease)
        }
    }

    public func expireClaimsOfDeadProcesses(on host: String, isAlive: @escaping @Sendable (Int32) -> Bool) async throws {
        try await session.run { db in
            let held = try db.query("""
                SELECT round_id, connection_id, fence, process_id FROM work_items
                WHERE state = 'claimed' AND host = $1 AND process_id IS NOT NULL AND lease_until > clock_timestamp()
                """, [host], label: "claims on this host").all.map {
                    (round: try $0.int(0)!, connection: try $0.int(1)!, fence: try $0.int(2)!, pid: Int32(try $0.int(3)!))
                }
            for claim in held where !isAlive(claim.pid) {
                try db.query("""
                    UPDATE work_items SET lease_until = clock_timestamp()
                    WHERE round_id = $1 AND connection_id = $2 AND fence = $3 AND state = 'claimed'
                    """, [claim.round, claim.connection, claim.fence], label: "expire dead claim")
            }
        }
    }

    /// A claim's UPDATE changed several items: a defect, never to be papered over.
    struct ClaimedMoreThanOne: LeadFlowError {
        let count: Int
        var code: String { "work.claim_not_single" }
        var disposition: Disposition { .fatal }
        var description: String { "one claim took \(count) connections of the round; nothing is processed under it" }
    }

    public func complete(_ claim: WorkClaim, outcome: String) async throws -> Bool {
        try await session.run { db in
            try db.transaction { db in
                let done = try db.query("""
                    UPDATE work_items SET state = 'done', done_at = clock_timestamp(), outcome = $5, lease_until = NULL
                    WHERE round_id = $1 AND connection_id = $2 AND fence = $3 AND worker_id = $4 AND state = 'claimed'
                    """, [claim.roundID, claim.connectionID, claim.fence, claim.workerID, outcome], label: "complete claim").affectedRows == 1
                try closeIfDone(db, roundID: claim.roundID)
                return done
            }
        }
    }

    public func release(_ claim: WorkClaim) async throws {
        try await session.run { db in
            _ = try db.query("""
                UPDATE work_items SET state = 'pending', worker_id = NULL, lease_until = NULL
                WHERE round_id = $1 AND connection_id = $2 AND fence = $3 AND state = 'claimed'
                """, [claim.roundID, claim.connectionID, claim.fence], label: "release claim")
        }
    }

    public func openItems(in round: WorkRound) async throws -> Int {
        try await session.run { db in
            try db.query("SELECT count(*) FROM work_items WHERE round_id = $1 AND state <> 'done'", [round.id],
                         label: "open items")[0].int(0) ?? 0
        }
    }

    public func renew(_ claim: WorkClaim) async throws -> Bool {
        try await session.run { db in
            try db.query("""
                UPDATE work_items SET lease_until = clock_timestamp() + $5 * interval '1 millisecond'
                WHERE round_id = $1 AND connection_id = $2 AND fence = $3 AND worker_id = $4 AND state = 'claimed'
                """, [claim.roundID, claim.connectionID, claim.fence, claim.workerID, claim.lease.milliseconds],
                label: "renew lease").affectedRows == 1
        }
    }

    /// Inside a window's transaction: the claim still holds (same fence, lease not taken
    /// over), and it is renewed. The row stays locked until the commit, so no other worker
    /// can claim the connection while this window commits.
    static func checkFence(_ claim: WorkClaim, in db: PostgresConnection) throws {
        let held = try db.query("""
            UPDATE work_items SET lease_until = greatest(lease_until, clock_timestamp() + $5 * interval '1 millisecond')
            WHERE round_id = $1 AND connection_id = $2 AND fence = $3 AND worker_id = $4 AND state = 'claimed'
            """, [claim.roundID, claim.connectionID, claim.fence, claim.workerID, claim.lease.milliseconds],
            label: "check fence").affectedRows == 1
        guard held else { throw LeaseLost(connectionID: claim.connectionID) }
    }

    /// Closes the round when no item is left. The round's row is locked first: two workers
    /// completing the last two items at once would each see the other's item open (its
    /// commit not visible yet) and neither would close it; behind the lock, the second
    /// one's check runs after the first one's commit and sees it.
    private func closeIfDone(_ db: PostgresConnection, roundID: Int64) throws {
        try db.query("SELECT 1 FROM work_rounds WHERE id = $1 FOR UPDATE", [roundID], label: "lock round")
        try db.query("""
            UPDATE work_rounds SET closed_at = clock_timestamp()
            WHERE id = $1 AND closed_at IS NULL AND NOT EXISTS (SELECT 1 FROM work_items WHERE round_id = $1 AND state <> 'done')
            """, [roundID], label: "close round")
    }
}

/// The app's Graph usage shared between workers through `graph_app_usage`. Reads are
/// cached for a second so a busy worker asks Postgres at most once a second.
public final class PostgresUsageBoard: UsageBoard {
    private struct State {
        var cached: (usage: GraphUsage?, at: ContinuousClock.Instant)?
        var lastPublished: (usage: GraphUsage, at: ContinuousClock.Instant)?
    }
    private let session: PostgresSession
    private let state = Mutex(State())
    let appID: String
    let workerID: String
    /// Reports older than this are ignored: usage is a sliding one-hour figure, and a
    /// worker that stopped reporting may simply have finished.
    let freshness: Duration

    public init(conninfo: String, appID: String, workerID: String, freshness: Duration = .seconds(300)) throws {
        session = try PostgresSession(conninfo: conninfo)
        self.appID = appID
        self.workerID = workerID
        self.freshness = freshness
    }

    public func publish(_ usage: GraphUsage) async throws {
        // A write per response would cost more than it tells: small moves wait 5 s.
        let due = state.withLock { state -> Bool in
            if let last = state.lastPublished, usage.regainAccessIn == nil, abs(usage.percent - last.usage.percent) < 5,
               ContinuousClock.now - last.at < .seconds(5) { return false }
            state.lastPublished = (usage, ContinuousClock.now)
            state.cached = nil
            return true
        }
        guard due else { return }
        let (appID, workerID) = (appID, workerID)
        try await session.run { db in
            _ = try db.query("""
                INSERT INTO graph_app_usage (app_id, percent, regain_at, reported_by, reported_at)
                VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond', $4, clock_timestamp())
                ON CONFLICT (app_id) DO UPDATE SET percent = EXCLUDED.percent, regain_at = EXCLUDED.regain_at,
                    reported_by = EXCLUDED.reported_by, reported_at = EXCLUDED.reported_at
                """, [appID, usage.percent, usage.regainAccessIn?.milliseconds, workerID], label: "publish usage")
        }
    }

    public func latest() async throws -> GraphUsage? {
        if let cached = state.withLock({ $0.cached }), ContinuousClock.now - cached.at < .seconds(1) { return cached.usage }
        let (appID, freshness) = (appID, freshness)
        let usage = try await session.run { db -> GraphUsage? in
            let rows = try db.query("""
                SELECT percent, greatest(0, extract(epoch FROM regain_at - clock_timestamp()))::float8 FROM graph_app_usage
                WHERE app_id = $1 AND reported_at > clock_timestamp() - $2 * interval '1 millisecond'
                """, [appID, freshness.milliseconds], label: "read usage")
            return rows.count == 1
                ? GraphUsage(percent: try rows[0].int(0) ?? 0,
                             regainAccessIn: try rows[0].double(1).flatMap { $0 > 0 ? .milliseconds(Int($0 * 1000)) : nil })
                : nil
        }
        state.withLock { $0.cached = (usage, ContinuousClock.now) }
        return usage
    }
}

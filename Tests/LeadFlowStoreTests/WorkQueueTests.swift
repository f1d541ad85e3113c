import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// The work queue against real Postgres: two workers (two sessions) never hold one
/// connection at once, a lapsed lease goes to the other worker, and the first one's
/// commit is then refused by the fence.
@Suite struct WorkQueueTests {
    let url: String
    let a: PostgresConnection
    let b: PostgresConnection
    /// The two workers' sessions (stores run on a session's own thread).
    let sa: PostgresSession
    let sb: PostgresSession

    init() throws {
        url = try TestDatabase.create("workqueue")
        a = try PostgresConnection(conninfo: url)
        b = try PostgresConnection(conninfo: url)
        sa = try PostgresSession(conninfo: url)
        sb = try PostgresSession(conninfo: url)
        try Migrator().migrate(a)
        try a.execute(raw: RawSQL(label: "three connections and a run", """
            INSERT INTO connections (instance, page_id, label, authenticator_user_id, token_ciphertext, token_key_id,
                                     token_type, authenticated_at, created_at, updated_at)
            SELECT 'acme', p::text, 'acme-' || p, '42', decode(repeat('ab', 40), 'hex'), 'k1', 'PAGE',
                   '2026-10-01T00:00:00Z', '2026-10-01T00:00:00Z', '2026-10-01T00:00:00Z'
            FROM generate_series(1001, 1003) p;
            INSERT INTO runs (kind, pipeline, host, started_at, upper_bound)
                VALUES ('scheduled', 'test', 'test', '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z');
            INSERT INTO archives (run_id, connection_id, path, sha256, bytes, members, window_to, created_at, verified_at)
                VALUES (1, 1, 'archives/a.tar.zst', repeat('a', 64), 1, 1, '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z',
                        '2026-11-01T00:00:00Z');
            """))
    }

    func worker(_ name: String, lease: Duration = .seconds(60)) -> WorkerSettings {
        WorkerSettings(workerID: name, lease: lease, connectionsAtOnce: 1, host: "test-host", processID: 1)
    }

    @Test func workersJoinOneRoundAndEachConnectionIsClaimedOnce() async throws {
        let queueA = WorkQueueStore(sa), queueB = WorkQueueStore(sb)
        let round = try await queueA.joinRound(kind: "scheduled", workerID: "a")
        let joined = try await queueB.joinRound(kind: "scheduled", workerID: "b")
        #expect(round.openedHere && !joined.openedHere && joined.id == round.id)
        var claimed: [Int64] = []
        while true {
            let byA = try await queueA.claim(in: round, worker: worker("a"))
            let byB = try await queueB.claim(in: joined, worker: worker("b"))
            if byA == nil && byB == nil { break }
            for claim in [byA, byB].compactMap({ $0 }) {
                claimed.append(claim.connectionID)
                #expect(try await (claim.workerID == "a" ? queueA : queueB).complete(claim, outcome: "loaded"))
            }
        }
        #expect(claimed.sorted() == [1, 2, 3])
        // The last completion closed the round; the next join opens a new one.
        #expect(try a.query("SELECT closed_at IS NOT NULL FROM work_rounds WHERE id = $1", [round.id])[0].bool(0) == true)
        let next = try await queueB.joinRound(kind: "scheduled", workerID: "b")
        #expect(next.openedHere && next.id != round.id)
        #expect(try await queueB.openItems(in: next) == 3)
    }

    /// A claim takes one item whatever plan Postgres picks. Written as a joined subquery, it
    /// was planned as a nested loop once the statistics knew older rounds but not the new
    /// one: the `LIMIT 1 … SKIP LOCKED` choice was rescanned per row, and one claim took
    /// the whole round (seen in the benchmark suite).
    @Test func aClaimTakesOneItemWhateverThePlan() async throws {
        try a.execute(raw: RawSQL(label: "many connections", """
            INSERT INTO connections (instance, page_id, label, authenticator_user_id, token_ciphertext, token_key_id,
                                     token_type, authenticated_at, created_at, updated_at)
            SELECT 'acme', p::text, 'acme-' || p, '42', decode(repeat('ab', 40), 'hex'), 'k1', 'PAGE',
                   '2026-10-01T00:00:00Z', '2026-10-01T00:00:00Z', '2026-10-01T00:00:00Z'
            FROM generate_series(2001, 2200) p
            """))
        let queue = WorkQueueStore(sa)
        let first = try await queue.joinRound(kind: "scheduled", workerID: "a")
        while let claim = try await queue.claim(in: first, worker: worker("a")) { _ = try await queue.complete(claim, outcome: "loaded") }
        // Statistics that know round 1 and not round 2: the plan that went wrong.
        try a.execute(raw: RawSQL(label: "analyze", "ANALYZE work_items"))
        let round = try await queue.joinRound(kind: "scheduled", workerID: "a")
        #expect(round.id != first.id)
        for expected in 1...3 {
            _ = try #require(try await queue.claim(in: round, worker: worker("a")))
            #expect(try a.query("SELECT count(*) FROM work_items WHERE round_id = $1 AND state = 'claimed'", [round.id])[0].int(0) == expected)
        }
    }

    /// A round left open with every item done (its last worker died between the two) is
    /// closed by the next worker to join, which opens a fresh round.
    @Test func aRoundLeftOpenWithEveryItemDoneIsClosedOnJoin() async throws {
        let queue = WorkQueueStore(sa)
        let round = try await queue.joinRound(kind: "scheduled", workerID: "a")
        try a.query("UPDATE work_items SET state = 'done' WHERE round_id = $1", [round.id])
        let next = try await WorkQueueStore(sb).joinRound(kind: "scheduled", workerID: "b")
        #expect(next.openedHere && next.id != round.id)
        #expect(try a.query("SELECT closed_at IS NOT NULL FROM work_rounds WHERE id = $1", [round.id])[0].bool(0) == true)
    }

    /// A window with nothing in it, loaded under `claim`.
    static func emptyWindow(_ claim: WorkClaim) -> WindowBatch {
        WindowBatch(runID: 1, connectionID: claim.connectionID, instance: "acme", formID: "2001", window: LeadWindow(from: nil, to: Date()),
                    archiveID: 1, commit: .leadsOnly, claim: claim, at: Date(), rows: nil, rowCount: 0, rejections: [])
    }

    @Test func aLapsedLeaseGoesToAnotherWorkerAndTheFirstCannotCommit() async throws {
        let queueA = WorkQueueStore(sa), queueB = WorkQueueStore(sb)
        let round = try await queueA.joinRound(kind: "scheduled", workerID: "a")
        let first = try #require(try await queueA.claim(in: round, worker: worker("a")))
        // Held: b gets the next connection, not a's.
        let other = try #require(try await queueB.claim(in: round, worker: worker("b")))
        #expect(other.connectionID != first.connectionID)
        // a does not renew in time (its lease ends now: set here rather than waited for, so
        // a slow machine cannot make the lease end before b's first claim).
        try a.query("UPDATE work_items SET lease_until = clock_timestamp() WHERE round_id = $1 AND connection_id = $2",
                    [round.id, first.connectionID])
        // b takes the connection over, under a higher fence.
        var takenOver: WorkClaim?
        while let claim = try await queueB.claim(in: round, worker: worker("b")) {
            if claim.connectionID == first.connectionID { takenOver = claim }
        }
        let takeover = try #require(takenOver)
        #expect(takeover.fence == first.fence + 1)
        #expect(try await queueA.renew(first) == false)

        // a's window now: refused before anything is written; b's commits.
        let leads = LeadStore(sa)
        await #expect(throws: LeaseLost.self) {
            _ = try await leads.loadWindow(Self.emptyWindow(first))
        }
        #expect(try await queueA.complete(first, outcome: "loaded") == false)
        _ = try await LeadStore(sb).loadWindow(Self.emptyWindow(takeover))
        #expect(try await queueB.complete(takeover, outcome: "loaded"))
        let row = try a.query("SELECT worker_id, claims, state FROM work_items WHERE round_id = $1 AND connection_id = $2",
                              [round.id, first.connectionID])[0]
        #expect(try row.string(0) == "b" && row.int(1) == 2 && row.string(2) == "done")
    }

    @Test func aDeadProcessOnThisHostGivesItsClaimsBackAtOnce() async throws {
        let queueA = WorkQueueStore(sa), queueB = WorkQueueStore(sb)
        let round = try await queueA.joinRound(kind: "scheduled", workerID: "a")
        let held = try #require(try await queueA.claim(in: round, worker: worker("a", lease: .seconds(600))))
        // Process 1 is "dead" for this check: its claim's lease ends now.
        try await queueB.expireClaimsOfDeadProcesses(on: "test-host", isAlive: { $0 != 1 })
        var claimed: [Int64] = []
        while let claim = try await queueB.claim(in: round, worker: worker("b")) { claimed.append(claim.connectionID) }
        #expect(claimed.contains(held.connectionID))
        // Another host's claims are left to their lease.
        let round2 = try await queueA.joinRound(kind: "backfill", workerID: "a")
        let elsewhere = try #require(try await queueA.claim(in: round2, worker: WorkerSettings(workerID: "c", host: "other-host", processID: 1)))
        try await queueB.expireClaimsOfDeadProcesses(on: "test-host", isAlive: { _ in false })
        #expect(try await queueB.renew(elsewhere))
    }

    @Test func usageIsSharedBetweenWorkersOfOneApp() async throws {
        let boardA = try PostgresUsageBoard(conninfo: url, appID: "app-1", workerID: "a")
        let boardB = try PostgresUsageBoard(conninfo: url, appID: "app-1", workerID: "b")
        let otherApp = try PostgresUsageBoard(conninfo: url, appID: "app-2", workerID: "c")
        #expect(try await boardB.latest() == nil)
        try await boardA.publish(GraphUsage(percent: 93, regainAccessIn: nil))
        try await Task.sleep(for: .milliseconds(1100))  // b's cache of "nothing" lasts a second
        #expect(try await boardB.latest()?.percent == 93)
        #expect(try await otherApp.latest() == nil)
        try await boardA.publish(GraphUsage(percent: 100, regainAccessIn: .seconds(30)))
        try await Task.sleep(for: .milliseconds(1100))
        let throttled = try #require(try await boardB.latest())
        #expect(throttled.percent == 100)
        // What is left of the 30 s (a busy test machine may take a few seconds to get here).
        #expect(throttled.regainAccessIn.map { $0 > .zero && $0 <= .seconds(30) } == true)
    }
}

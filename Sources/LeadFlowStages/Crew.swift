import Foundation
import LeadFlowCore
import Synchronization

/// The workers of one process: `connectionsAtOnce` lanes, each with a Postgres session of
/// its own, claiming the connections of a round from the work queue until none is left
/// anywhere. Other processes, on this host or others, do the same against the same
/// Postgres; none of them talks to another.
public struct Crew: Sendable {
    /// One lane's stage and queue, sharing the lane's Postgres session.
    public struct Lane {
        public let stage: RunStage
        public let queue: any WorkQueue

        public init(stage: RunStage, queue: any WorkQueue) {
            self.stage = stage
            self.queue = queue
        }
    }

    public let settings: WorkerSettings
    let makeLane: @Sendable () throws -> Lane
    /// A session for the round's opening and the lease heartbeat.
    let makeQueue: @Sendable () throws -> any WorkQueue

    public init(settings: WorkerSettings, makeLane: @escaping @Sendable () throws -> Lane,
                makeQueue: @escaping @Sendable () throws -> any WorkQueue) {
        self.settings = settings
        self.makeLane = makeLane
        self.makeQueue = makeQueue
    }

    typealias Pass = @Sendable (RunStage, ConnectionRecord, WorkClaim, inout RunStage.Timings) async throws -> [RunStage.ConnectionSummary]

    /// Joins (or opens) the round of `kind` and works it to its end. A round that had been
    /// open longer than a lease when joined belongs to an earlier start (its workers died,
    /// or are still busy with a long round): it is helped to its end, and then a fresh
    /// round is worked, so every connection still gets this run's pass.
    func work(kind: String, records: [ConnectionRecord], progress: @escaping @Sendable (String) -> Void,
              pass: @escaping Pass) async throws -> (summaries: [RunStage.ConnectionSummary], timings: RunStage.Timings) {
        let queue = try makeQueue()
        // A worker of this host killed earlier (a rerun after a crash) gives its claims back now.
        try queue.expireClaimsOfDeadProcesses(on: settings.host, isAlive: processExists)
        var summaries: [RunStage.ConnectionSummary] = []
        var timings = RunStage.Timings()
        for _ in 0..<2 {
            let round = try queue.joinRound(kind: kind, workerID: settings.workerID)
            progress(round.openedHere ? "opened \(kind) round \(round.id)" : "joined \(kind) round \(round.id)")
            let worked = try await work(round, records: records, progress: progress, pass: pass)
            summaries += worked.summaries
            timings = timings + worked.timings
            if round.openedHere || round.ageAtJoin <= settings.lease { break }
            progress("round \(round.id) was opened by an earlier run; it is finished, and a new round starts")
        }
        return (summaries, timings)
    }

    private func work(_ round: WorkRound, records: [ConnectionRecord], progress: @escaping @Sendable (String) -> Void,
                      pass: @escaping Pass) async throws -> (summaries: [RunStage.ConnectionSummary], timings: RunStage.Timings) {
        let held = HeldClaims()
        let heartbeat = Heartbeat(every: settings.lease / 3, makeQueue: makeQueue, held: held)
        defer { heartbeat.stop() }
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return try await withThrowingTaskGroup(of: (summaries: [RunStage.ConnectionSummary], timings: RunStage.Timings).self) { group in
            for number in 0..<max(1, settings.connectionsAtOnce) {
                group.addTask {
                    try await lane(number, round: round, records: byID, held: held, progress: progress, pass: pass)
                }
            }
            var summaries: [RunStage.ConnectionSummary] = []
            var timings = RunStage.Timings()
            for try await worked in group {
                summaries += worked.summaries
                timings = timings + worked.timings
            }
            return (summaries, timings)
        }
    }

    private func lane(_ number: Int, round: WorkRound, records: [Int64: ConnectionRecord], held: HeldClaims,
                      progress: @escaping @Sendable (String) -> Void,
                      pass: Pass) async throws -> (summaries: [RunStage.ConnectionSummary], timings: RunStage.Timings) {
        let lane = try makeLane()
        var summaries: [RunStage.ConnectionSummary] = []
        var timings = RunStage.Timings()
        var waiting = false
        while true {
            try Task.checkCancellation()
            guard let claim = try lane.queue.claim(in: round, worker: settings) else {
                // Nothing free: done, unless other workers still hold connections of the
                // round. A dead worker's come free when its lease ends, so wait for them.
                let elsewhere = try lane.queue.openItems(in: round) - held.count
                guard elsewhere > 0 else { break }
                if number == 0, !waiting {
                    progress("waiting for \(elsewhere) connection\(elsewhere == 1 ? "" : "s") other workers hold")
                }
                waiting = true
                try await Task.sleep(for: settings.pollInterval)
                try lane.queue.expireClaimsOfDeadProcesses(on: settings.host, isAlive: processExists)
                continue
            }
            waiting = false
            held.add(claim)
            defer { held.remove(claim) }
            let record: ConnectionRecord
            if let known = records[claim.connectionID] {
                record = known
            } else if let added = try lane.stage.connections.all().first(where: { $0.id == claim.connectionID }) {
                record = added
            } else {
                _ = try lane.queue.complete(claim, outcome: "connection removed")
                continue
            }
            do {
                let passes = try await pass(lane.stage, record, claim, &timings)
                if try lane.queue.complete(claim, outcome: passes.last.map(Self.outcome) ?? "done") {
                    summaries += passes
                } else {
                    summaries.append(Self.takenOver(record))
                }
            } catch is LeaseLost {
                summaries.append(Self.takenOver(record))
            } catch {
                // Give it back at once rather than after the lease: another worker may do better.
                try? lane.queue.release(claim)
                throw error
            }
        }
        return (summaries, timings)
    }

    static func takenOver(_ record: ConnectionRecord) -> RunStage.ConnectionSummary {
        .init(label: record.label, job: .scheduled, state: .idle("the lease ended and another worker took it over"))
    }

    static func outcome(_ summary: RunStage.ConnectionSummary) -> String {
        switch summary.state {
        case .loaded: return "loaded"
        case .void(let cause): return "void: \(cause.rawValue)"
        case .skipped: return "skipped"
        case .partial: return "partial"
        case .idle: return "idle"
        }
    }
}

/// The claims this process holds right now, for the heartbeat and for telling apart
/// connections held here from those held by other workers.
final class HeldClaims: Sendable {
    private let claims = Mutex<[WorkClaim]>([])

    var count: Int { claims.withLock { $0.count } }
    var all: [WorkClaim] { claims.withLock { $0 } }
    func add(_ claim: WorkClaim) { claims.withLock { $0.append(claim) } }
    func remove(_ claim: WorkClaim) { claims.withLock { $0.removeAll { $0 == claim } } }
}

/// Renews this process's leases on a thread of its own, so a lane busy for minutes in one
/// window (or a cooperative pool held by synchronous work) never lets a lease lapse while
/// the process lives. When the process dies, the renewals stop and the leases run out.
final class Heartbeat: Sendable {
    private let stopped = Atomic<Bool>(false)

    init(every interval: Duration, makeQueue: @escaping @Sendable () throws -> any WorkQueue, held: HeldClaims) {
        let thread = Thread { [self] in
            guard let queue = try? makeQueue() else { return }
            var next = ContinuousClock.now + interval
            while !self.stopped.load(ordering: .relaxed) {
                if ContinuousClock.now >= next {
                    for claim in held.all { _ = try? queue.renew(claim) }
                    next = ContinuousClock.now + interval
                }
                usleep(50_000)
            }
        }
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}

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
        try await queue.expireClaimsOfDeadProcesses(on: settings.host, isAlive: processExists)
        var summaries: [RunStage.ConnectionSummary] = []
        var timings = RunStage.Timings()
        // Connections this run already passed (in the earlier round it helped finish): done
        // at once in the fresh round, never read twice by one run.
        let passed = PassedConnections()
        for _ in 0..<2 {
            let round = try await queue.joinRound(kind: kind, workerID: settings.workerID)
            progress(round.openedHere ? "opened \(kind) round \(round.id)" : "joined \(kind) round \(round.id)")
            let worked = try await work(round, records: records, passed: passed, progress: progress, pass: pass)
            summaries += worked.summaries
            timings = timings + worked.timings
            if round.openedHere || round.ageAtJoin <= settings.lease { break }
            progress("round \(round.id) was opened by an earlier run; it is finished, and a new round starts")
        }
        return (summaries, timings)
    }

    private func work(_ round: WorkRound, records: [ConnectionRecord], passed: PassedConnections, progress: @escaping @Sendable (String) -> Void,
                      pass: @escaping Pass) async throws -> (summaries: [RunStage.ConnectionSummary], timings: RunStage.Timings) {
        let held = HeldClaims()
        let heartbeatQueue = try makeQueue()
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return try await withThrowingTaskGroup(of: (summaries: [RunStage.ConnectionSummary], timings: RunStage.Timings)?.self) { group in
            // The heartbeat: an ordinary child task. Every Postgres call runs on its session's
            // own thread, so a lane busy in a long COPY never keeps it from its turn.
            let interval = settings.lease / 3
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    // A pass with no progress for `stalledAfter` is not renewed: its claim
                    // lapses and another worker takes the connection over.
                    for (claim, liveness) in held.all where liveness.idleFor < settings.stalledAfter {
                        _ = try? await heartbeatQueue.renew(claim)
                    }
                }
                return nil
            }
            let lanes = max(1, settings.connectionsAtOnce)
            for number in 0..<lanes {
                group.addTask {
                    try await lane(number, round: round, records: byID, held: held, passed: passed, progress: progress, pass: pass)
                }
            }
            var summaries: [RunStage.ConnectionSummary] = []
            var timings = RunStage.Timings()
            var finished = 0
            while let worked = try await group.next() {
                guard let worked else { continue }
                summaries += worked.summaries
                timings = timings + worked.timings
                finished += 1
                if finished == lanes { group.cancelAll() } // the heartbeat's turn to stop
            }
            return (summaries, timings)
        }
    }

    private func lane(_ number: Int, round: WorkRound, records: [Int64: ConnectionRecord], held: HeldClaims,
                      passed: PassedConnections, progress: @escaping @Sendable (String) -> Void,
                      pass: Pass) async throws -> (summaries: [RunStage.ConnectionSummary], timings: RunStage.Timings) {
        let lane = try makeLane()
        var summaries: [RunStage.ConnectionSummary] = []
        var timings = RunStage.Timings()
        var waiting = false
        while true {
            try Task.checkCancellation()
            guard let claim = try await lane.queue.claim(in: round, worker: settings) else {
                // Nothing free: done, unless other workers still hold connections of the
                // round. A dead worker's come free when its lease ends, so wait for them.
                let elsewhere = try await lane.queue.openItems(in: round) - held.count
                guard elsewhere > 0 else { break }
                if number == 0, !waiting {
                    progress("waiting for \(elsewhere) connection\(elsewhere == 1 ? "" : "s") other workers hold")
                }
                waiting = true
                try await Task.sleep(for: settings.pollInterval)
                try await lane.queue.expireClaimsOfDeadProcesses(on: settings.host, isAlive: processExists)
                continue
            }
            waiting = false
            if passed.contains(claim.connectionID) {
                _ = try await lane.queue.complete(claim, outcome: "passed earlier in this run")
                continue
            }
            let liveness = PassLiveness()
            held.add(claim, liveness)
            let record: ConnectionRecord
            if let known = records[claim.connectionID] {
                record = known
            } else if let added = try await lane.stage.connections.all().first(where: { $0.id == claim.connectionID }) {
                record = added
            } else {
                _ = try await lane.queue.complete(claim, outcome: "connection removed")
                held.remove(claim)
                continue
            }
            do {
                let passes = try await PassLiveness.$current.withValue(liveness) { try await pass(lane.stage, record, claim, &timings) }
                passed.insert(claim.connectionID)
                if try await lane.queue.complete(claim, outcome: passes.last.map(Self.outcome) ?? "done") {
                    summaries += passes
                } else {
                    summaries.append(Self.takenOver(record))
                }
                held.remove(claim)
            } catch is LeaseLost {
                held.remove(claim)
                summaries.append(Self.takenOver(record))
            } catch {
                // Give it back at once rather than after the lease: another worker may do better.
                held.remove(claim)
                try? await lane.queue.release(claim)
                throw error
            }
        }
        return (summaries, timings)
    }

    static func takenOver(_ record: ConnectionRecord) -> RunStage.ConnectionSummary {
        var summary = RunStage.ConnectionSummary(label: record.label, job: .scheduled, state: .idle("the lease ended and another worker took it over"))
        summary.connectionID = record.id
        summary.instance = record.instance
        return summary
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
    private let claims = Mutex<[(claim: WorkClaim, liveness: PassLiveness)]>([])

    var count: Int { claims.withLock { $0.count } }
    var all: [(claim: WorkClaim, liveness: PassLiveness)] { claims.withLock { $0 } }
    func add(_ claim: WorkClaim, _ liveness: PassLiveness) { claims.withLock { $0.append((claim, liveness)) } }
    func remove(_ claim: WorkClaim) { claims.withLock { $0.removeAll { $0.claim == claim } } }
}

/// The connections this run has passed, across the rounds it works.
final class PassedConnections: Sendable {
    private let ids = Mutex<Set<Int64>>([])

    func contains(_ id: Int64) -> Bool { ids.withLock { $0.contains(id) } }
    func insert(_ id: Int64) { _ = ids.withLock { $0.insert(id) } }
}

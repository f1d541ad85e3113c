import Foundation
import LeadFlowCore
import LeadFlowGraph
import Logging

/// `leadflow run` and `leadflow backfill`: every connection is checked (`PreflightStage`)
/// and, when healthy, passed through extract → archive → load (`ConnectionPass`), its
/// run recorded (`RunLedger`) and what earlier runs left swept (`RunSweeper`). Data moves
/// through the run's spool folder and Postgres rows, never only memory.
public struct RunStage: Sendable {
    let graph: GraphClient
    let connections: any ConnectionRepository
    let leads: any LeadRepository
    let archiver: any RawArchiver
    let sealer: any TokenSealer
    /// Hashes leads against the erasure tombstones: erased people are never spooled.
    let erasure: any ErasureHasher
    let pipeline: Pipeline
    let settings: ValidationSettings
    let spoolRoot: URL
    let host: String
    let logger: Logger
    /// How long a run row counts as alive without a renewal (`RunLedger`).
    let runLease: Duration
    /// Renews the run's lease (nil: `leads`).
    let leaseKeeper: (any LeadRepository)?
    /// Set for `leadflow run` and `backfill --all`: connections are claimed from the work
    /// queue by lanes of their own, so many processes share the work. Nil: this stage's
    /// one session takes every connection in order.
    let crew: Crew?

    public init(graph: GraphClient, connections: any ConnectionRepository, leads: any LeadRepository, archiver: any RawArchiver,
                sealer: any TokenSealer, erasure: any ErasureHasher, pipeline: Pipeline, settings: ValidationSettings, spoolRoot: URL,
                host: String = ProcessIdentity.current.processSpace, logger: Logger = Logger(label: "leadflow.run"), crew: Crew? = nil,
                runLease: Duration = .seconds(120), leaseKeeper: (any LeadRepository)? = nil) {
        self.crew = crew
        self.erasure = erasure
        self.runLease = runLease
        self.leaseKeeper = leaseKeeper
        self.graph = graph
        self.connections = connections
        self.leads = leads
        self.archiver = archiver
        self.sealer = sealer
        self.pipeline = pipeline
        self.settings = settings
        self.spoolRoot = spoolRoot
        self.host = host
        self.logger = logger
    }

    var pass: ConnectionPass {
        ConnectionPass(graph: graph, connections: connections, leads: leads, archiver: archiver, erasure: erasure, pipeline: pipeline,
                       spoolRoot: spoolRoot, logger: logger)
    }

    var sweeper: RunSweeper { RunSweeper(leads: leads, archiver: archiver, spoolRoot: spoolRoot, host: host, logger: logger) }

    func ledger(_ kind: RunKind, now: Date) -> RunLedger {
        RunLedger(kind: kind, pipeline: pipeline.name, host: host, now: now, lease: runLease, keeper: leaseKeeper ?? leads)
    }

    /// The scheduled batch. A connection reauthenticated after a void period is backfilled
    /// first (in a run of kind `backfill`), unless the pipeline turns that off.
    public func run(now: Date, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        _ = try await sweeper.sweep(now: now)
        let scheduled = ledger(.scheduled, now: now)
        let backfill = ledger(.backfill, now: now)
        _ = try await scheduled.id(leads)
        do {
            let (summaries, timings) = try await eachHealthyConnection(kind: .scheduled, try await connections.all(), now: now, progress: progress) {
                stage, record, token, fences, timings in
                var summaries: [ConnectionSummary] = []
                if stage.pipeline.automaticBackfill {
                    for period in try await stage.leads.voidPeriodsAwaitingBackfill(connectionID: record.id) {
                        let summary = try await stage.pass.run(record, token: token, job: .voidPeriod(period), runID: try await backfill.id(stage.leads),
                                                               fences: fences, now: now, timings: &timings, progress: progress)
                        summaries.append(summary)
                        if case .void = summary.state { return summaries }
                    }
                }
                let summary = try await stage.pass.run(record, token: token, job: .scheduled, runID: try await scheduled.id(stage.leads),
                                                       fences: fences, now: now, timings: &timings, progress: progress)
                return summaries + [summary]
            }
            // The scheduled run answers for every connection it looked at (void and skipped ones
            // included); the backfill run for its own passes.
            try await scheduled.finish(summaries.filter { !$0.job.isBackfill }, leads: leads, spoolRoot: spoolRoot)
            try await backfill.finish(summaries.filter { $0.job.isBackfill }, leads: leads, spoolRoot: spoolRoot)
            return Summary(runID: try await scheduled.id(leads), kind: .scheduled, backfillRunID: await backfill.startedID, connections: summaries,
                           timings: timings)
        } catch {
            await scheduled.fail(leads)
            await backfill.fail(leads)
            throw error
        }
    }

    /// `leadflow backfill`: for the given connections (all when nil) that are healthy again,
    /// re-read each void period awaiting a backfill, or the given window, through the same
    /// extract → archive → load path as a run.
    public func backfill(labels: [String]?, window: LeadWindow?, now: Date,
                         progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        _ = try await sweeper.sweep(now: now)
        let ledger = ledger(.backfill, now: now)
        let runID = try await ledger.id(leads)
        do {
            var records = try await connections.all()
            if let labels {
                let unknown = Set(labels).subtracting(records.map(\.label))
                guard unknown.isEmpty else { throw UnknownConnection(labels: unknown.sorted()) }
                records = records.filter { labels.contains($0.label) }
            }
            // Named connections are done here and now; `--all` is shared with other workers.
            let (summaries, timings) = try await eachHealthyConnection(kind: labels == nil ? .backfill : nil, records, now: now,
                                                                       progress: progress) { stage, record, token, fences, timings in
                let jobs: [Job]
                if let window {
                    jobs = [.window(window)]
                } else {
                    jobs = try await stage.leads.voidPeriodsAwaitingBackfill(connectionID: record.id).map { .voidPeriod($0) }
                }
                guard !jobs.isEmpty else {
                    return [.init(label: record.label, job: .backfill, state: .idle("no void period awaits a backfill"))]
                }
                var summaries: [ConnectionSummary] = []
                for job in jobs {
                    let summary = try await stage.pass.run(record, token: token, job: job, runID: runID, fences: fences, now: now,
                                                           timings: &timings, progress: progress)
                    summaries.append(summary)
                    if case .void = summary.state { break }
                }
                return summaries
            }
            try await ledger.finish(summaries, leads: leads, spoolRoot: spoolRoot)
            return Summary(runID: runID, kind: .backfill, backfillRunID: nil, connections: summaries, timings: timings)
        } catch {
            await ledger.fail(leads)
            throw error
        }
    }

    typealias Pass = @Sendable (RunStage, ConnectionRecord, AccessToken, PassFences, inout Timings) async throws -> [ConnectionSummary]

    /// Every connection once: through the crew's lanes and the work queue when there is a
    /// crew and a round `kind`, else in order on this stage's session.
    private func eachHealthyConnection(kind: RunKind?, _ records: [ConnectionRecord], now: Date,
                                       progress: @escaping @Sendable (String) -> Void,
                                       pass: @escaping Pass) async throws -> (summaries: [ConnectionSummary], timings: Timings) {
        if let crew, let kind {
            let order = Dictionary(records.enumerated().map { ($1.label, $0) }, uniquingKeysWith: { first, _ in first })
            var worked = try await crew.work(kind: kind.rawValue, records: records, progress: progress) { stage, record, claim, timings in
                try await stage.preflightAndPass(record, claim: claim, now: now, timings: &timings, progress: progress, pass: pass)
            }
            // Lanes finish in any order; the summary lists connections as `status` does.
            worked.summaries = worked.summaries.enumerated().sorted {
                (order[$0.element.label] ?? .max, $0.offset) < (order[$1.element.label] ?? .max, $1.offset)
            }.map(\.element)
            return worked
        }
        var summaries: [ConnectionSummary] = []
        var timings = Timings()
        for record in records {
            summaries += try await preflightAndPass(record, claim: nil, now: now, timings: &timings, progress: progress, pass: pass)
        }
        return (summaries, timings)
    }

    /// Preflight a connection; when healthy, hold its lock and run `pass`. The preflight's
    /// Graph calls and time are counted with the connection's first summary.
    func preflightAndPass(_ record: ConnectionRecord, claim: WorkClaim?, now: Date, timings: inout Timings,
                          progress: @escaping @Sendable (String) -> Void, pass: @escaping Pass) async throws -> [ConnectionSummary] {
        if graph.rateLimitBudget.isSpent {
            // Graph throttled this run past its bound already: asking again would only add
            // waits; the connection is read by the next run.
            progress("\(record.label): skipped, \(Self.rateLimitBudgetSpent(graph))")
            var summary = ConnectionSummary(label: record.label, job: .preflight, state: .skipped(Self.rateLimitBudgetSpent(graph)))
            summary.connectionID = record.id
            summary.instance = record.instance
            return [summary]
        }
        let preflight = PreflightStage(graph: graph, repository: connections, sealer: sealer, settings: settings, logger: logger)
        progress("\(record.label): checking the token")
        let preflightStart = ContinuousClock.now
        let tally = GraphTally()
        let checked = try await tally.recording { try await preflight.check(record, now: now, recheck: false) }
        let preflightSeconds = (ContinuousClock.now - preflightStart).timeInterval
        timings.preflight += preflightSeconds
        func only(_ state: ConnectionSummary.State) -> [ConnectionSummary] {
            [.init(label: record.label, job: .preflight, state: state)]
        }
        func accounted(_ summaries: [ConnectionSummary]) -> [ConnectionSummary] {
            var summaries = summaries
            for index in summaries.indices {
                summaries[index].connectionID = record.id
                summaries[index].instance = record.instance
            }
            if !summaries.isEmpty {
                summaries[0].graph = summaries[0].graph + tally.counts
                summaries[0].timings.preflight += preflightSeconds
            }
            return summaries
        }
        switch checked.outcome {
        case .checked(.void(let cause, _, _)):
            return accounted(only(.void(cause)))
        case .unchecked(let reason):
            return accounted(only(.skipped(reason)))
        case .superseded:
            return accounted(only(.idle(ConnectionPass.reauthenticatedDuringRun)))
        case .checked:
            break
        }
        guard let token = checked.token else { return [] }
        let liveness = PassLiveness.current ?? PassLiveness()
        liveness.tick()
        // The lease, and the pass under it, within the pass time limit: a wait for another
        // holder counts against it too.
        let held = LeaseHolder()
        let limit = Duration.seconds(pipeline.workers.passTimeLimitMinutes * 60)
        do {
            let outcome = try await Self.withTimeLimit(limit) { [self] () -> (passes: [ConnectionSummary], timings: Timings)? in
                try await PassLiveness.$current.withValue(liveness) {
                    guard let lease = try await takeConnection(record, claim: claim, progress: progress) else { return nil }
                    held.lease = lease
                    // Renewed while the pass makes progress, on the lease keeper's own session
                    // (this lane's may be in a long COPY); a pass stuck for `stalledAfter` lets
                    // it lapse, so another worker takes the connection over and this one can
                    // no longer commit.
                    let (keeper, stalledAfter) = (leaseKeeper ?? leads, workerSettings(claim).stalledAfter)
                    let heartbeat = Task {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: lease.lease / 3)
                            guard !Task.isCancelled, liveness.idleFor < stalledAfter else { continue }
                            _ = try? await keeper.renewConnection(lease)
                        }
                    }
                    defer { heartbeat.cancel() }
                    var local = Timings()
                    let passes = try await pass(self, record, token, PassFences(claim: claim, lease: lease), &local)
                    return (passes, local)
                }
            }
            if let lease = held.lease { try? await leads.releaseConnection(lease) }
            guard let outcome else {
                progress("\(record.label): another run is processing it; skipped")
                return accounted(only(.idle("another run is processing it")))
            }
            timings = timings + outcome.timings
            return accounted(outcome.passes)
        } catch let limit as PassTimeLimit {
            if let lease = held.lease { try? await leads.releaseConnection(lease) }
            logger.warning("pass stopped at its time limit", metadata: ["connection.id": "\(record.id)", "minutes": "\(limit.minutes)"])
            return accounted(only(.skipped(limit.description)))
        } catch let error as GraphError where error.isRateLimit {
            // Graph still throttles past what this run may wait: the next run reads it.
            if let lease = held.lease { try? await leads.releaseConnection(lease) }
            logger.warning("connection skipped: Graph's rate limit", metadata: ["connection.id": "\(record.id)", "error": "\(error.code)"])
            return accounted(only(.skipped(Self.rateLimitBudgetSpent(graph))))
        } catch {
            if let lease = held.lease { try? await leads.releaseConnection(lease) }
            throw error
        }
    }

    static func rateLimitBudgetSpent(_ graph: GraphClient) -> String {
        "Graph's rate limits used up this run's wait budget (\(Int(graph.rateLimitBudget.limit.timeInterval)) s, graph.max_rate_limit_wait_seconds); the next run reads it"
    }

    /// The lease a pass took, for releasing it however the pass ends.
    final class LeaseHolder: @unchecked Sendable {
        private let lock = NSLock()
        private var taken: ConnectionLease?
        var lease: ConnectionLease? {
            get { lock.withLock { taken } }
            set { lock.withLock { taken = newValue } }
        }
    }

    /// The connection's lease for this pass. Alone (no crew), a connection another run
    /// holds is skipped; a crew's worker holds a claim on it in this round, so it waits
    /// for the other holder to finish or its lease to lapse, and never calls it done unread.
    private func takeConnection(_ record: ConnectionRecord, claim: WorkClaim?,
                                progress: @escaping @Sendable (String) -> Void) async throws -> ConnectionLease? {
        let holder = claim?.workerID ?? ProcessIdentity.current.workerID
        var told = false
        while true {
            if let lease = try await leads.acquireConnection(record.id, holder: holder, lease: workerSettings(claim).lease) { return lease }
            guard claim != nil else { return nil }
            if !told { progress("\(record.label): another run holds it; waiting for it to finish or its lease to end") }
            told = true
            // Waiting on purpose is not a stall: the crew keeps renewing this lane's claim,
            // so no other lane claims the same connection and waits beside it.
            PassLiveness.tick()
            try await Task.sleep(for: workerSettings(claim).pollInterval)
        }
    }

    /// The lease and stall settings: the claim's (a crew's lane), or the pipeline's for a stage alone.
    func workerSettings(_ claim: WorkClaim?) -> WorkerSettings {
        WorkerSettings(workerID: claim?.workerID ?? ProcessIdentity.current.workerID,
                       lease: claim?.lease ?? .seconds(pipeline.workers.leaseSeconds))
    }

    /// A pass longer than `workers.pass_time_limit_minutes`: stopped (its requests
    /// cancelled), the connection skipped this run with this reason.
    struct PassTimeLimit: LeadFlowError {
        let minutes: Int
        var code: String { "run.pass_time_limit" }
        var disposition: Disposition { .retry }
        var description: String { "the pass took longer than its time limit (\(minutes) min, workers.pass_time_limit_minutes) and was stopped" }
    }

    static func withTimeLimit<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw PassTimeLimit(minutes: Int(limit.components.seconds / 60))
            }
            return value
        }
    }
}

import Foundation
import LeadFlowCore
import LeadFlowGraph
import Logging

/// `leadflow run` and `leadflow backfill`: every connection is checked (`PreflightStage`)
/// and, when healthy, passed through extract → archive → load (`ConnectionPass`), its
/// run recorded (`RunLedger`) and what earlier runs left swept (`RunSweeper`). Data moves
/// through the run's spool folder and Postgres rows, never only memory.
public struct RunStage {
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
                host: String = ProcessInfo.processInfo.hostName, logger: Logger = Logger(label: "leadflow.run"), crew: Crew? = nil,
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
                stage, record, token, claim, timings in
                var summaries: [ConnectionSummary] = []
                if stage.pipeline.automaticBackfill {
                    for period in try await stage.leads.voidPeriodsAwaitingBackfill(connectionID: record.id) {
                        let summary = try await stage.pass.run(record, token: token, job: .voidPeriod(period), runID: try await backfill.id(stage.leads),
                                                               claim: claim, now: now, timings: &timings, progress: progress)
                        summaries.append(summary)
                        if case .void = summary.state { return summaries }
                    }
                }
                let summary = try await stage.pass.run(record, token: token, job: .scheduled, runID: try await scheduled.id(stage.leads),
                                                       claim: claim, now: now, timings: &timings, progress: progress)
                return summaries + [summary]
            }
            // The scheduled run answers for every connection it looked at (void and skipped ones
            // included); the backfill run for its own passes.
            try await scheduled.finish(summaries.filter { !$0.job.isBackfill }, leads: leads, spoolRoot: spoolRoot)
            try await backfill.finish(summaries.filter { $0.job.isBackfill }, leads: leads, spoolRoot: spoolRoot)
            return Summary(runID: try await scheduled.id(leads), backfillRunID: await backfill.startedID, connections: summaries, timings: timings)
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
                                                                       progress: progress) { stage, record, token, claim, timings in
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
                    let summary = try await stage.pass.run(record, token: token, job: job, runID: runID, claim: claim, now: now,
                                                           timings: &timings, progress: progress)
                    summaries.append(summary)
                    if case .void = summary.state { break }
                }
                return summaries
            }
            try await ledger.finish(summaries, leads: leads, spoolRoot: spoolRoot)
            return Summary(runID: runID, backfillRunID: nil, connections: summaries, timings: timings)
        } catch {
            await ledger.fail(leads)
            throw error
        }
    }

    typealias Pass = @Sendable (RunStage, ConnectionRecord, AccessToken, WorkClaim?, inout Timings) async throws -> [ConnectionSummary]

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

    /// Preflight a connection; when healthy, hold its lock and run `pass`.
    func preflightAndPass(_ record: ConnectionRecord, claim: WorkClaim?, now: Date, timings: inout Timings,
                          progress: @escaping @Sendable (String) -> Void, pass: Pass) async throws -> [ConnectionSummary] {
        let preflight = PreflightStage(graph: graph, repository: connections, sealer: sealer, settings: settings, logger: logger)
        progress("\(record.label): checking the token")
        let preflightStart = ContinuousClock.now
        let checked = try await preflight.check(record, now: now, recheck: false)
        timings.preflight += (ContinuousClock.now - preflightStart).timeInterval
        switch checked.outcome {
        case .checked(.void(let cause, _, _)):
            return [.init(label: record.label, job: .preflight, state: .void(cause))]
        case .unchecked(let reason):
            return [.init(label: record.label, job: .preflight, state: .skipped(reason))]
        case .checked:
            break
        }
        guard let token = checked.token else { return [] }
        guard try await leads.tryLockConnection(record.id) else {
            progress("\(record.label): another run is processing it; skipped")
            return [.init(label: record.label, job: .preflight, state: .idle("another run is processing it"))]
        }
        do {
            let passes = try await pass(self, record, token, claim, &timings)
            try? await leads.unlockConnection(record.id)
            return passes
        } catch {
            try? await leads.unlockConnection(record.id)
            throw error
        }
    }
}

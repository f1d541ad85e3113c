import Crypto
import Foundation
import LeadFlowCore
import LeadFlowGraph
import Logging
import Synchronization

/// `leadflow run`: for every connection, preflight → extract → archive → transform → load,
/// passing data through the run's spool folder and Postgres rows, never only memory.
public struct RunStage {
    let graph: GraphClient
    let connections: any ConnectionRepository
    let leads: any LeadRepository
    let archiver: any RawArchiver
    let sealer: any TokenSealer
    let pipeline: Pipeline
    let settings: ValidationSettings
    let spoolRoot: URL
    let host: String
    let logger: Logger
    /// Set for `leadflow run` and `backfill --all`: connections are claimed from the work
    /// queue by lanes of their own, so many processes share the work. Nil: this stage's
    /// one session takes every connection in order.
    let crew: Crew?

    public init(graph: GraphClient, connections: any ConnectionRepository, leads: any LeadRepository, archiver: any RawArchiver,
                sealer: any TokenSealer, pipeline: Pipeline, settings: ValidationSettings, spoolRoot: URL,
                host: String = ProcessInfo.processInfo.hostName, logger: Logger = Logger(label: "leadflow.run"), crew: Crew? = nil) {
        self.crew = crew
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

    public struct ConnectionSummary: Sendable, Equatable {
        public enum State: Sendable, Equatable {
            case loaded
            case void(VoidCause)
            /// Not processed this run: Graph could not be asked.
            case skipped(String)
            /// Some forms failed; the others loaded.
            case partial([String])
            /// Nothing to do here: another run (another worker) is processing it, or a
            /// backfill found no void period awaiting one. Not a failure.
            case idle(String)
        }
        public let label: String
        /// What was read: "scheduled", "backfill of void period N" or "backfill window".
        public let job: String
        public let state: State
        public let counts: LoadCounts
        public let pages: Int
    }

    /// Seconds spent in each stage, summed over connections.
    public struct Timings: Sendable, Equatable {
        public var preflight: Double = 0
        public var extract: Double = 0
        public var archive: Double = 0
        public var load: Double = 0

        static func + (a: Timings, b: Timings) -> Timings {
            Timings(preflight: a.preflight + b.preflight, extract: a.extract + b.extract, archive: a.archive + b.archive,
                    load: a.load + b.load)
        }
    }

    public struct Summary: Sendable, Equatable {
        /// The scheduled run, or the backfill run for `leadflow backfill`.
        public let runID: Int64
        /// The backfill run a scheduled run started for reauthenticated connections.
        public let backfillRunID: Int64?
        public let connections: [ConnectionSummary]
        public let timings: Timings

        /// Exit 2 material: a void connection or a rejected lead.
        public var hasGaps: Bool {
            connections.contains { if case .void = $0.state { return true } else { return $0.counts.rejected > 0 } }
        }

        /// Exit 1 material: a connection skipped or only partly read.
        public var hasFailures: Bool {
            connections.contains {
                switch $0.state {
                case .skipped, .partial: return true
                case .loaded, .void, .idle: return false
                }
            }
        }
    }

    /// What one connection's pass reads.
    enum Job {
        /// Every form from its watermark − overlap to now; the watermark moves.
        case scheduled
        /// Every form over the void period widened by the overlap, except the forms whose
        /// window already committed; the period is marked backfilled when all have.
        case voidPeriod(VoidPeriod)
        /// Every form over a given window (`backfill --since/--until`).
        case window(LeadWindow)

        var name: String {
            switch self {
            case .scheduled: return "scheduled"
            case .voidPeriod(let period): return "backfill of void period \(period.id)"
            case .window: return "backfill window"
            }
        }
    }

    /// The scheduled batch. A connection reauthenticated after a void period is backfilled
    /// first (in a run of kind `backfill`), unless the pipeline turns that off.
    public func run(now: Date, progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        try sweepAbandonedRuns(now: now)
        let scheduled = RunLedger(kind: "scheduled", pipeline: pipeline.name, host: host, now: now)
        let backfill = RunLedger(kind: "backfill", pipeline: pipeline.name, host: host, now: now)
        _ = try scheduled.id(leads)
        do {
            let (summaries, timings) = try await eachHealthyConnection(kind: "scheduled", try connections.all(), now: now, progress: progress) {
                stage, record, token, claim, timings in
                var summaries: [ConnectionSummary] = []
                if stage.pipeline.automaticBackfill {
                    for period in try stage.leads.voidPeriodsAwaitingBackfill(connectionID: record.id) {
                        let summary = try await stage.process(record, token: token, job: .voidPeriod(period), runID: try backfill.id(stage.leads),
                                                              claim: claim, now: now, timings: &timings, progress: progress)
                        summaries.append(summary)
                        if case .void = summary.state { return summaries }
                    }
                }
                let summary = try await stage.process(record, token: token, job: .scheduled, runID: try scheduled.id(stage.leads),
                                                      claim: claim, now: now, timings: &timings, progress: progress)
                return summaries + [summary]
            }
            // The scheduled run answers for every connection it looked at (void and skipped ones
            // included); the backfill run for its own passes.
            try scheduled.finish(summaries.filter { !$0.job.hasPrefix("backfill") }, leads: leads, spoolRoot: spoolRoot)
            try backfill.finish(summaries.filter { $0.job.hasPrefix("backfill") }, leads: leads, spoolRoot: spoolRoot)
            return Summary(runID: try scheduled.id(leads), backfillRunID: backfill.startedID, connections: summaries, timings: timings)
        } catch {
            scheduled.fail(leads)
            backfill.fail(leads)
            throw error
        }
    }

    /// `leadflow backfill`: for the given connections (all when nil) that are healthy again,
    /// re-read each void period awaiting a backfill, or the given window, through the same
    /// extract → archive → transform → load path as a run.
    public func backfill(labels: [String]?, window: LeadWindow?, now: Date,
                         progress: @escaping @Sendable (String) -> Void = { _ in }) async throws -> Summary {
        try sweepAbandonedRuns(now: now)
        let ledger = RunLedger(kind: "backfill", pipeline: pipeline.name, host: host, now: now)
        let runID = try ledger.id(leads)
        do {
            var records = try connections.all()
            if let labels {
                let unknown = Set(labels).subtracting(records.map(\.label))
                guard unknown.isEmpty else { throw UnknownConnection(labels: unknown.sorted()) }
                records = records.filter { labels.contains($0.label) }
            }
            // Named connections are done here and now; `--all` is shared with other workers.
            let (summaries, timings) = try await eachHealthyConnection(kind: labels == nil ? "backfill" : nil, records, now: now,
                                                                       progress: progress) { stage, record, token, claim, timings in
                let jobs: [Job] = try window.map { [.window($0)] }
                    ?? stage.leads.voidPeriodsAwaitingBackfill(connectionID: record.id).map { .voidPeriod($0) }
                guard !jobs.isEmpty else {
                    return [.init(label: record.label, job: "backfill", state: .idle("no void period awaits a backfill"),
                                  counts: LoadCounts(), pages: 0)]
                }
                var summaries: [ConnectionSummary] = []
                for job in jobs {
                    let summary = try await stage.process(record, token: token, job: job, runID: runID, claim: claim, now: now,
                                                          timings: &timings, progress: progress)
                    summaries.append(summary)
                    if case .void = summary.state { break }
                }
                return summaries
            }
            try ledger.finish(summaries, leads: leads, spoolRoot: spoolRoot)
            return Summary(runID: runID, backfillRunID: nil, connections: summaries, timings: timings)
        } catch {
            ledger.fail(leads)
            throw error
        }
    }

    public struct UnknownConnection: LeadFlowError {
        public let labels: [String]
        public var code: String { "unknown_connection" }
        public var disposition: Disposition { .fatal }
        public var description: String { "no connection is labelled \(labels.joined(separator: ", ")) (see leadflow status)" }
    }

    /// A run row, started when first needed (by whichever lane needs it first) and finished
    /// with the counters of its passes.
    final class RunLedger: Sendable {
        let kind: String
        let pipeline: String
        let host: String
        let now: Date
        private let started = Mutex<Int64?>(nil)

        init(kind: String, pipeline: String, host: String, now: Date) {
            self.kind = kind
            self.pipeline = pipeline
            self.host = host
            self.now = now
        }

        var startedID: Int64? { started.withLock { $0 } }

        func id(_ leads: any LeadRepository) throws -> Int64 {
            try started.withLock { started in
                if let started { return started }
                let id = try leads.startRun(kind: kind, pipeline: pipeline, host: host, processID: getpid(), startedAt: now, upperBound: now)
                started = id
                return id
            }
        }

        func finish(_ passes: [ConnectionSummary], leads: any LeadRepository, spoolRoot: URL) throws {
            guard let startedID else { return }
            try? FileManager.default.removeItem(at: spoolRoot.appendingPathComponent("run-\(startedID)"))
            let total = passes.reduce(LoadCounts()) { $0 + $1.counts }
            let clean = passes.allSatisfy { if case .loaded = $0.state { return true }; if case .idle = $0.state { return true }; return false }
            try leads.finishRun(startedID, status: clean ? "succeeded" : "partial", counters: RunStage.counters(total), at: now)
        }

        func fail(_ leads: any LeadRepository) {
            guard let startedID else { return }
            try? leads.finishRun(startedID, status: "failed", counters: [:], at: now)
        }
    }

    typealias Pass = @Sendable (RunStage, ConnectionRecord, AccessToken, WorkClaim?, inout Timings) async throws -> [ConnectionSummary]

    /// Every connection once: through the crew's lanes and the work queue when there is a
    /// crew and a round `kind`, else in order on this stage's session.
    private func eachHealthyConnection(kind: String?, _ records: [ConnectionRecord], now: Date,
                                       progress: @escaping @Sendable (String) -> Void,
                                       pass: @escaping Pass) async throws -> (summaries: [ConnectionSummary], timings: Timings) {
        if let crew, let kind {
            let order = Dictionary(records.enumerated().map { ($1.label, $0) }, uniquingKeysWith: { first, _ in first })
            var worked = try await crew.work(kind: kind, records: records, progress: progress) { stage, record, claim, timings in
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
        let checked = try await preflight.check(record, now: now)
        timings.preflight += (ContinuousClock.now - preflightStart).timeInterval
        switch checked.outcome {
        case .checked(.void(let cause, _, _)):
            return [.init(label: record.label, job: "preflight", state: .void(cause), counts: LoadCounts(), pages: 0)]
        case .unchecked(let reason):
            return [.init(label: record.label, job: "preflight", state: .skipped(reason), counts: LoadCounts(), pages: 0)]
        case .checked:
            break
        }
        guard let token = checked.token else { return [] }
        guard try leads.tryLockConnection(record.id) else {
            progress("\(record.label): another run is processing it; skipped")
            return [.init(label: record.label, job: "preflight", state: .idle("another run is processing it"), counts: LoadCounts(), pages: 0)]
        }
        defer { try? leads.unlockConnection(record.id) }
        return try await pass(self, record, token, claim, &timings)
    }

    /// Runs of this host whose process is gone (killed, crashed) are marked abandoned and
    /// their spool folders removed. Nothing committed depends on a spool: the next window
    /// re-reads whatever an abandoned run had not committed.
    private func sweepAbandonedRuns(now: Date) throws {
        var alive: Set<Int64> = []
        for run in try leads.runningRuns(host: host) {
            guard let pid = run.processID, !processExists(pid) else {
                alive.insert(run.id)
                continue
            }
            try leads.abandonRun(run.id, at: now)
            logger.notice("marked an interrupted run abandoned", metadata: ["run.id": "\(run.id)"])
        }
        // Spool folders of runs that are not running any more, on any host (LEADFLOW_HOME may
        // be a volume that workers on several hosts share). Listed before the runs are asked
        // again: a worker starting meanwhile writes its run row before its folder, so a
        // folder seen here whose run is running is always in the answer.
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: spoolRoot.path)) ?? []
        alive.formUnion(try leads.runningRuns(host: nil).map(\.id))
        for name in folders {
            guard name.hasPrefix("run-"), let id = Int64(name.dropFirst(4)), !alive.contains(id) else { continue }
            try? FileManager.default.removeItem(at: spoolRoot.appendingPathComponent(name))
        }
    }

    static func counters(_ counts: LoadCounts) -> [String: Int] {
        ["inserted": counts.inserted, "updated": counts.updated, "unchanged": counts.unchanged, "rejected": counts.rejected, "erased": counts.erased]
    }

    /// The window a void period's backfill reads: the period widened by the overlap on both
    /// sides, never past the run's clock.
    static func backfillWindow(_ period: VoidPeriod, overlap: TimeInterval, now: Date) -> LeadWindow {
        let end = min((period.endedAt ?? now).addingTimeInterval(overlap), now)
        return LeadWindow(from: period.startedAt.addingTimeInterval(-overlap), to: end)
    }

    /// One healthy connection, one job: extract every form's window, archive the raw pages, load.
    func process(_ record: ConnectionRecord, token: AccessToken, job: Job, runID: Int64, claim: WorkClaim?, now: Date,
                 timings: inout Timings, progress: (String) -> Void) async throws -> ConnectionSummary {
        var clock = ContinuousClock.now
        func lap() -> Double {
            let elapsed = (ContinuousClock.now - clock).timeInterval
            clock = ContinuousClock.now
            return elapsed
        }
        func summary(_ state: ConnectionSummary.State, _ counts: LoadCounts = LoadCounts(), pages: Int = 0) -> ConnectionSummary {
            ConnectionSummary(label: record.label, job: job.name, state: state, counts: counts, pages: pages)
        }
        let spool = spoolRoot.appendingPathComponent("run-\(runID)/connection-\(record.id)")
        defer { try? FileManager.default.removeItem(at: spool) }
        let sink = try SpoolSink(folder: spool, erased: ErasureList(hashes: try leads.erasureHashes(), hash: { [sealer] in sealer.erasureHash($0) }))

        let allForms: [GraphForm]
        do {
            allForms = try await graph.forms(pageID: record.pageID, token: token)
        } catch let error as GraphError where error.voidCause != nil {
            try connections.openVoidPeriod(connectionID: record.id, cause: error.voidCause!, detail: error.causeDetail ?? error.code,
                                           since: now, now: now)
            return summary(.void(error.voidCause!))
        }
        try leads.saveForms(allForms, connectionID: record.id, runID: runID, at: now)
        let overlap = TimeInterval(pipeline.window.overlapMinutes * 60)
        var forms = allForms
        var windows: [String: LeadWindow] = [:]
        let archiveName: String
        switch job {
        case .scheduled:
            for form in forms {
                let from = try leads.watermark(connectionID: record.id, formID: form.id).map { $0.addingTimeInterval(-overlap) } ?? pipeline.window.start
                windows[form.id] = LeadWindow(from: from, to: now)
            }
            archiveName = "run-\(runID)"
        case .voidPeriod(let period):
            let done = try leads.backfilledForms(voidPeriodID: period.id)
            forms = forms.filter { !done.contains($0.id) }
            let window = Self.backfillWindow(period, overlap: overlap, now: now)
            for form in forms { windows[form.id] = window }
            archiveName = "run-\(runID)-void-\(period.id)"
        case .window(let window):
            for form in forms { windows[form.id] = window }
            archiveName = "run-\(runID)-backfill"
        }
        let fixedWindows = windows
        progress("\(record.label): \(job.name): reading \(forms.count) form\(forms.count == 1 ? "" : "s")")
        let extractor = ConnectionExtractor(client: graph, concurrency: pipeline.graph.pageConcurrency, logger: logger)
        let outcome = try await extractor.extract(forms: forms, token: token, window: { fixedWindows[$0.id] ?? LeadWindow(from: nil, to: now) },
                                                  sink: sink)

        timings.extract += lap()
        var completed: [String: LeadStreamSummary]
        var state = ConnectionSummary.State.loaded
        switch outcome {
        case .completed(_, let summaries):
            completed = summaries
        case .partial(_, let summaries, let failures):
            completed = summaries
            state = .partial(failures.keys.sorted())
        case .void(let cause, let detail, _, _, let summaries):
            // The forms read to their end before the token failed still load; nothing more is asked.
            completed = summaries
            try connections.openVoidPeriod(connectionID: record.id, cause: cause, detail: detail ?? cause.rawValue, since: now, now: now)
            state = .void(cause)
        }
        let pages = sink.pages(of: Set(completed.keys))
        var counts = LoadCounts()
        if !completed.isEmpty {
            // Archive first: durable before any row that points at it commits.
            progress("\(record.label): archiving \(pages.count) page\(pages.count == 1 ? "" : "s")")
            let froms = completed.keys.compactMap { windows[$0]?.from }
            let manifest = try Self.manifest(runID: runID, record: record, pipeline: pipeline, job: job.name,
                                             windows: windows.filter { completed[$0.key] != nil }, pages: pages, now: now)
            let compression = pipeline.archive.compression == "gzip" ? "tar.gz" : pipeline.archive.compression == "none" ? "tar" : "tar.zst"
            let archived = try archiver.archive(members: pages.map { ($0.name, $0.file) }, manifest: manifest,
                                                relativePath: "\(pipeline.archive.folder)/\(record.instance)/\(record.pageID)/\(archiveName).\(compression)")
            let archiveID = try leads.saveArchive(archived, runID: runID, connectionID: record.id,
                                                  windowFrom: froms.count == completed.count ? froms.min() : nil,
                                                  windowTo: windows.values.map(\.to).max() ?? now, at: now)
            timings.archive += lap()
            progress("\(record.label): loading")
            counts = try load(pages, of: completed.keys.sorted(), forms: allForms, record: record, job: job, windows: windows,
                              archiveID: archiveID, runID: runID, claim: claim, now: now)
            counts.erased = sink.erasedCount
            timings.load += lap()
        }
        if case .voidPeriod(let period) = job, state == .loaded {
            // Every form's window is in (now or by an earlier, killed backfill).
            try leads.markBackfilled(voidPeriodID: period.id, runID: runID, at: now)
        }
        logger.info("connection loaded", metadata: ["connection.id": "\(record.id)", "run.id": "\(runID)", "run.job": "\(job.name)",
                                                    "leads.inserted": "\(counts.inserted)", "leads.updated": "\(counts.updated)",
                                                    "leads.rejected": "\(counts.rejected)"])
        return summary(state, counts, pages: pages.count)
    }

    /// Transforms and loads the spooled pages, one transaction per form window.
    private func load(_ pages: [SpoolSink.Spooled], of formIDs: [String], forms: [GraphForm], record: ConnectionRecord, job: Job,
                      windows: [String: LeadWindow], archiveID: Int64, runID: Int64, claim: WorkClaim?, now: Date) throws -> LoadCounts {
        let transformer = LeadTransformer(pipeline: pipeline)
        let formNames = Dictionary(forms.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        var counts = LoadCounts()
        for formID in formIDs {
            let context = LeadContext(instance: record.instance, connectionID: record.id, pageID: record.pageID, formID: formID,
                                      formName: formNames[formID])
            var newest: Date?
            let commit: WindowCommit
            switch job {
            // The watermark is the newest lead the server gave (never the local clock), moved
            // in the transaction that commits the window.
            case .scheduled: commit = .watermark({ newest })
            case .voidPeriod(let period): commit = .backfill(voidPeriodID: period.id, window: windows[formID] ?? LeadWindow(from: nil, to: now))
            case .window: commit = .leadsOnly
            }
            counts = counts + (try leads.loadWindow(runID: runID, connectionID: record.id, formID: formID,
                                                    window: windows[formID] ?? LeadWindow(from: nil, to: now), archiveID: archiveID,
                                                    commit: commit, claim: claim, at: now) { emit, reject in
                for page in pages where page.formID == formID {
                    let list = try GraphJSON.decode(GraphList<GraphLead>.self, from: Data(contentsOf: page.file))
                    for raw in list.data {
                        let digest = Hex.lowercase(SHA256.hash(data: Data(raw.canonicalJSON.utf8)))
                        if let created = raw.createdAt, created < now { newest = max(newest ?? created, created) }
                        switch transformer.transform(raw, context: context) {
                        case .lead(let lead): try emit(lead, digest)
                        case .rejected(let rejection): reject(rejection, digest)
                        }
                    }
                }
            })
        }
        return counts
    }

    static func manifest(runID: Int64, record: ConnectionRecord, pipeline: Pipeline, job: String, windows: [String: LeadWindow],
                         pages: [SpoolSink.Spooled], now: Date) throws -> Data {
        let object: [String: Any] = [
            "run_id": runID, "job": job, "connection": record.label, "instance": record.instance, "page_id": record.pageID,
            "graph_api_version": pipeline.graph.apiVersion, "created_at": UTCTime.iso8601(now),
            "windows": windows.mapValues { window -> [String: Any] in ["from": window.from.map(UTCTime.iso8601) as Any? ?? NSNull(), "to": UTCTime.iso8601(window.to)] },
            "counts": ["pages": pages.count, "leads": pages.reduce(0) { $0 + $1.leads }],
            "members": Dictionary(pages.map { ($0.name, $0.sha256) }, uniquingKeysWith: { first, _ in first }),
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }
}

/// A process of this host that exists (kill 0 succeeds, or is refused for lack of
/// permission): a run or a claim whose process is gone was left by a crash.
func processExists(_ processID: Int32) -> Bool {
    kill(processID, 0) == 0 || errno != ESRCH
}

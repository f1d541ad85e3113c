import Crypto
import Foundation
import LeadFlowCore
import LeadFlowGraph
import Logging

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

    public init(graph: GraphClient, connections: any ConnectionRepository, leads: any LeadRepository, archiver: any RawArchiver,
                sealer: any TokenSealer, pipeline: Pipeline, settings: ValidationSettings, spoolRoot: URL,
                host: String = ProcessInfo.processInfo.hostName, logger: Logger = Logger(label: "leadflow.run")) {
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
            /// Not processed this run: another run holds it, or Graph could not be asked.
            case skipped(String)
            /// Some forms failed; the others loaded.
            case partial([String])
        }
        public let label: String
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
    }

    public struct Summary: Sendable, Equatable {
        public let runID: Int64
        public let connections: [ConnectionSummary]
        public let timings: Timings

        /// Exit 2 material: a void connection or a rejected lead.
        public var hasGaps: Bool {
            connections.contains { if case .void = $0.state { return true } else { return $0.counts.rejected > 0 } }
        }
    }

    public func run(now: Date, progress: (String) -> Void = { _ in }) async throws -> Summary {
        try sweepAbandonedRuns(now: now)
        let runID = try leads.startRun(kind: "scheduled", pipeline: pipeline.name, host: host, processID: getpid(),
                                       startedAt: now, upperBound: now)
        var summaries: [ConnectionSummary] = []
        var timings = Timings()
        let preflight = PreflightStage(graph: graph, repository: connections, sealer: sealer, settings: settings, logger: logger)
        do {
            for record in try connections.all() {
                progress("\(record.label): checking the token")
                let preflightStart = ContinuousClock.now
                let checked = try await preflight.check(record, now: now)
                timings.preflight += (ContinuousClock.now - preflightStart).timeInterval
                switch checked.outcome {
                case .checked(.void(let cause, _, _)):
                    summaries.append(.init(label: record.label, state: .void(cause), counts: LoadCounts(), pages: 0))
                    continue
                case .unchecked(let reason):
                    summaries.append(.init(label: record.label, state: .skipped(reason), counts: LoadCounts(), pages: 0))
                    continue
                case .checked:
                    break
                }
                guard let token = checked.token else { continue }
                guard try leads.tryLockConnection(record.id) else {
                    progress("\(record.label): another run is processing it; skipped")
                    summaries.append(.init(label: record.label, state: .skipped("another run holds this connection"), counts: LoadCounts(), pages: 0))
                    continue
                }
                defer { try? leads.unlockConnection(record.id) }
                summaries.append(try await process(record, token: token, runID: runID, now: now, timings: &timings, progress: progress))
            }
        } catch {
            let total = summaries.reduce(LoadCounts()) { $0 + $1.counts }
            try? leads.finishRun(runID, status: "failed", counters: Self.counters(total), at: now)
            throw error
        }
        try? FileManager.default.removeItem(at: spoolRoot.appendingPathComponent("run-\(runID)"))
        let total = summaries.reduce(LoadCounts()) { $0 + $1.counts }
        let clean = summaries.allSatisfy { $0.state == .loaded }
        try leads.finishRun(runID, status: clean ? "succeeded" : "partial", counters: Self.counters(total), at: now)
        return Summary(runID: runID, connections: summaries, timings: timings)
    }

    /// Runs of this host whose process is gone (killed, crashed) are marked abandoned and
    /// their spool folders removed. Nothing committed depends on a spool: the next window
    /// re-reads whatever an abandoned run had not committed.
    private func sweepAbandonedRuns(now: Date) throws {
        var alive: Set<Int64> = []
        for run in try leads.runningRuns(host: host) {
            guard let pid = run.processID, kill(pid, 0) != 0, errno == ESRCH else {
                alive.insert(run.id)
                continue
            }
            try leads.abandonRun(run.id, at: now)
            logger.notice("marked an interrupted run abandoned", metadata: ["run.id": "\(run.id)"])
        }
        // Spool folders of runs that are not running on this host any more.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: spoolRoot.path)) ?? [] {
            guard name.hasPrefix("run-"), let id = Int64(name.dropFirst(4)), !alive.contains(id) else { continue }
            try? FileManager.default.removeItem(at: spoolRoot.appendingPathComponent(name))
        }
    }

    static func counters(_ counts: LoadCounts) -> [String: Int] {
        ["inserted": counts.inserted, "updated": counts.updated, "unchanged": counts.unchanged, "rejected": counts.rejected, "erased": counts.erased]
    }

    /// One healthy connection: extract every form's window, archive the raw pages, load.
    private func process(_ record: ConnectionRecord, token: AccessToken, runID: Int64, now: Date, timings: inout Timings,
                         progress: (String) -> Void) async throws -> ConnectionSummary {
        var clock = ContinuousClock.now
        func lap() -> Double {
            let elapsed = (ContinuousClock.now - clock).timeInterval
            clock = ContinuousClock.now
            return elapsed
        }
        let spool = spoolRoot.appendingPathComponent("run-\(runID)/connection-\(record.id)")
        defer { try? FileManager.default.removeItem(at: spool) }
        let sink = try SpoolSink(folder: spool)

        let forms: [GraphForm]
        do {
            forms = try await graph.forms(pageID: record.pageID, token: token)
        } catch let error as GraphError where error.voidCause != nil {
            try connections.openVoidPeriod(connectionID: record.id, cause: error.voidCause!, detail: error.causeDetail ?? error.code,
                                           since: now, now: now)
            return .init(label: record.label, state: .void(error.voidCause!), counts: LoadCounts(), pages: 0)
        }
        try leads.saveForms(forms, connectionID: record.id, runID: runID, at: now)
        var windows: [String: LeadWindow] = [:]
        let overlap = TimeInterval(pipeline.window.overlapMinutes * 60)
        for form in forms {
            let from = try leads.watermark(connectionID: record.id, formID: form.id).map { $0.addingTimeInterval(-overlap) } ?? pipeline.window.start
            windows[form.id] = LeadWindow(from: from, to: now)
        }
        let fixedWindows = windows
        progress("\(record.label): reading \(forms.count) form\(forms.count == 1 ? "" : "s")")
        let extractor = ConnectionExtractor(client: graph, concurrency: pipeline.graph.concurrency, logger: logger)
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
        guard !completed.isEmpty else {
            return .init(label: record.label, state: state, counts: LoadCounts(), pages: 0)
        }

        // Archive first: durable before any row that points at it commits.
        progress("\(record.label): archiving \(pages.count) page\(pages.count == 1 ? "" : "s")")
        let froms = completed.keys.compactMap { windows[$0]?.from }
        let manifest = try Self.manifest(runID: runID, record: record, pipeline: pipeline, windows: windows.filter { completed[$0.key] != nil },
                                         pages: pages, now: now)
        let compression = pipeline.archive.compression == "gzip" ? "tar.gz" : pipeline.archive.compression == "none" ? "tar" : "tar.zst"
        let archived = try archiver.archive(members: pages.map { ($0.name, $0.file) }, manifest: manifest,
                                            relativePath: "\(pipeline.archive.folder)/\(record.instance)/\(record.pageID)/run-\(runID).\(compression)")
        let archiveID = try leads.saveArchive(archived, runID: runID, connectionID: record.id,
                                              windowFrom: froms.count == completed.count ? froms.min() : nil, windowTo: now, at: now)

        timings.archive += lap()
        progress("\(record.label): loading")
        let transformer = LeadTransformer(pipeline: pipeline)
        let formNames = Dictionary(forms.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        var counts = LoadCounts()
        for formID in completed.keys.sorted() {
            let context = LeadContext(instance: record.instance, connectionID: record.id, pageID: record.pageID, formID: formID,
                                      formName: formNames[formID])
            var newest: Date?
            // The watermark is the newest lead the server gave (never the local clock), moved
            // in the transaction that commits the window.
            counts = counts + (try leads.loadWindow(runID: runID, connectionID: record.id, formID: formID, archiveID: archiveID,
                                                    newWatermark: { newest }, at: now) { emit, reject in
                for page in pages where page.formID == formID {
                    let list = try JSONDecoder().decode(GraphList<GraphLead>.self, from: Data(contentsOf: page.file))
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
        timings.load += lap()
        logger.info("connection loaded", metadata: ["connection.id": "\(record.id)", "run.id": "\(runID)",
                                                    "leads.inserted": "\(counts.inserted)", "leads.updated": "\(counts.updated)",
                                                    "leads.rejected": "\(counts.rejected)"])
        return .init(label: record.label, state: state, counts: counts, pages: pages.count)
    }

    static func manifest(runID: Int64, record: ConnectionRecord, pipeline: Pipeline, windows: [String: LeadWindow],
                         pages: [SpoolSink.Spooled], now: Date) throws -> Data {
        let object: [String: Any] = [
            "run_id": runID, "connection": record.label, "instance": record.instance, "page_id": record.pageID,
            "graph_api_version": pipeline.graph.apiVersion, "created_at": UTCTime.iso8601(now),
            "windows": windows.mapValues { window -> [String: Any] in ["from": window.from.map(UTCTime.iso8601) as Any? ?? NSNull(), "to": UTCTime.iso8601(window.to)] },
            "counts": ["pages": pages.count, "leads": pages.reduce(0) { $0 + $1.leads }],
            "members": Dictionary(pages.map { ($0.name, $0.sha256) }, uniquingKeysWith: { first, _ in first }),
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }
}

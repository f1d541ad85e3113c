import Foundation
import LeadFlowCore
import LeadFlowGraph
import Logging

/// One healthy connection, one job: list the Page's forms, read every form's window
/// (each lead parsed, transformed and hashed once, as it arrives: `LeadSpool`), archive the
/// raw pages, then load each form's ready rows in a transaction of its own.
struct ConnectionPass {
    let graph: GraphClient
    let connections: any ConnectionRepository
    let leads: any LeadRepository
    let archiver: any RawArchiver
    let erasure: any ErasureHasher
    let pipeline: Pipeline
    let spoolRoot: URL
    let logger: Logger

    func run(_ record: ConnectionRecord, token: AccessToken, job: Job, runID: Int64, claim: WorkClaim?, now: Date,
             timings: inout RunStage.Timings, progress: (String) -> Void) async throws -> RunStage.ConnectionSummary {
        var clock = ContinuousClock.now
        func lap() -> Double {
            let elapsed = (ContinuousClock.now - clock).timeInterval
            clock = ContinuousClock.now
            return elapsed
        }
        func summary(_ state: RunStage.ConnectionSummary.State, _ counts: LoadCounts = LoadCounts(), pages: Int = 0) -> RunStage.ConnectionSummary {
            .init(label: record.label, job: job.kind, state: state, counts: counts, pages: pages)
        }
        let allForms: [GraphForm]
        var firstPages: [String: Data]
        do {
            (allForms, firstPages) = try await openingReads(record, token: token, job: job, now: now)
        } catch let error as GraphError where error.voidCause != nil {
            try await connections.openVoidPeriod(connectionID: record.id, cause: error.voidCause!, detail: error.causeDetail ?? error.code,
                                                 since: now, now: now)
            return summary(.void(error.voidCause!))
        }
        try await leads.saveForms(allForms, connectionID: record.id, runID: runID, at: now)
        let (forms, windows) = try await windows(for: job, formIDs: allForms.map(\.id), record: record, now: now)
        let wanted = Set(forms.map(\.self))
        firstPages = firstPages.filter { wanted.contains($0.key) }
        let reading = allForms.filter { wanted.contains($0.id) }

        let folder = spoolRoot.appendingPathComponent("run-\(runID)/connection-\(record.id)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let contexts = Dictionary(allForms.map {
            ($0.id, LeadContext(instance: record.instance, connectionID: record.id, pageID: record.pageID, formID: $0.id, formName: $0.name))
        }, uniquingKeysWith: { first, _ in first })
        let spool = try LeadSpool(folder: folder, transformer: LeadTransformer(pipeline: pipeline), contexts: contexts,
                                  erased: try ErasureList(tombstones: try await leads.erasureHashes(instance: record.instance),
                                                          hasher: erasure),
                                  now: now)
        progress("\(record.label): \(job): reading \(reading.count) form\(reading.count == 1 ? "" : "s")")
        let extractor = ConnectionExtractor(client: graph, concurrency: pipeline.graph.pageConcurrency, logger: logger)
        let outcome = try await extractor.extract(forms: reading, token: token, window: { windows[$0.id] ?? LeadWindow(from: nil, to: now) },
                                                  sink: spool, firstPages: firstPages)
        timings.extract += lap()

        var completed: [String: LeadStreamSummary]
        var state = RunStage.ConnectionSummary.State.loaded
        switch outcome {
        case .completed(_, let summaries):
            completed = summaries
        case .partial(_, let summaries, let failures):
            completed = summaries
            state = .partial(failures.keys.sorted())
        case .void(let cause, let detail, _, _, let summaries):
            // The forms read to their end before the token failed still load; nothing more is asked.
            completed = summaries
            try await connections.openVoidPeriod(connectionID: record.id, cause: cause, detail: detail ?? cause.rawValue, since: now, now: now)
            state = .void(cause)
        }
        let pages = spool.pages(of: Set(completed.keys))
        let read = pages.reduce(0) { $0 + $1.leads }
        var counts = LoadCounts()
        // A pass that found nothing writes no archive and touches no lead; a backfill still
        // records each committed window, so a killed one resumes after it.
        if !completed.isEmpty, read > 0 || job.kind.isBackfill {
            // Archive first: durable before any row that points at it commits.
            progress("\(record.label): archiving \(pages.count) page\(pages.count == 1 ? "" : "s")")
            let froms = completed.keys.compactMap { windows[$0]?.from }
            let manifest = try Self.manifest(runID: runID, record: record, pipeline: pipeline, job: job,
                                             windows: windows.filter { completed[$0.key] != nil }, pages: pages, now: now)
            let archived = try await archiver.archive(members: pages.map { ($0.name, $0.file) }, manifest: manifest,
                                                subject: ArchiveSubject(instance: record.instance, pageID: record.pageID, runID: runID,
                                                                        pass: Self.archivePass(job)))
            let archiveID = try await leads.saveArchive(archived, runID: runID, connectionID: record.id,
                                                  windowFrom: froms.count == completed.count ? froms.min() : nil,
                                                  windowTo: windows.values.map(\.to).max() ?? now, at: now)
            timings.archive += lap()
            progress("\(record.label): loading")
            for formID in completed.keys.sorted() {
                let rows = try spool.rows(of: formID)
                let window = windows[formID] ?? LeadWindow(from: nil, to: now)
                let commit: WindowCommit
                switch job {
                // The watermark is the newest lead the server gave (never the local clock),
                // moved in the transaction that commits the window.
                case .scheduled: commit = .watermark(rows?.newest)
                case .voidPeriod(let period): commit = .backfill(voidPeriodID: period.id, window: window)
                case .window: commit = .leadsOnly
                }
                if case .watermark = commit, rows == nil || (rows!.rows == 0 && rows!.rejections.isEmpty && rows!.newest == nil) {
                    continue // nothing read: no transaction
                }
                counts = counts + (try await leads.loadWindow(WindowBatch(
                    runID: runID, connectionID: record.id, instance: record.instance, formID: formID, window: window,
                    archiveID: archiveID, commit: commit, claim: claim, at: now, rows: rows?.file, rowCount: rows?.rows ?? 0,
                    rejections: rows?.rejections ?? [])))
            }
            counts.erased = spool.erasedCount
            timings.load += lap()
        }
        if case .voidPeriod(let period) = job, state == .loaded {
            // Every form's window is in (now or by an earlier, killed backfill).
            try await leads.markBackfilled(voidPeriodID: period.id, runID: runID, at: now)
        }
        logger.info("connection loaded", metadata: ["connection.id": "\(record.id)", "run.id": "\(runID)", "run.job": "\(job)",
                                                    "leads.inserted": "\(counts.inserted)", "leads.updated": "\(counts.updated)",
                                                    "leads.rejected": "\(counts.rejected)"])
        return summary(state, counts, pages: pages.count)
    }

    /// The Page's forms and the first page of each form's window, in as few round trips as
    /// Graph allows: one batch with the forms list and the first page of every form an
    /// earlier run saw (all a run that finds nothing new needs), then one batch for the
    /// first pages of forms new to LeadFlow. A call the batch did not answer well is made
    /// again the ordinary way, which retries, halves or voids as its error says.
    private func openingReads(_ record: ConnectionRecord, token: AccessToken, job: Job,
                              now: Date) async throws -> (forms: [GraphForm], firstPages: [String: Data]) {
        let known = try await windows(for: job, formIDs: try await leads.formIDs(connectionID: record.id), record: record, now: now)
        var calls = [graph.formsCall(pageID: record.pageID)]
        let batched = Array(known.forms.prefix(GraphClient.batchLimit - 1))
        calls += batched.map { graph.leadsCall(formID: $0, window: known.windows[$0]!) }
        var answers: [GraphClient.BatchAnswer?] = []
        if calls.count > 1 {
            do {
                answers = try await graph.batch(calls, token: token, context: "forms and first pages of page \(record.pageID)")
            } catch {
                logger.info("batch refused; reading one call at a time", metadata: ["connection.id": "\(record.id)", "error": "\(error)"])
            }
        }
        let ok = { (index: Int) -> Data? in
            guard index < answers.count, let answer = answers[index], answer.status == 200 else { return nil }
            return answer.body
        }
        let forms = try await graph.forms(pageID: record.pageID, token: token, first: ok(0))
        var firstPages: [String: Data] = [:]
        for (offset, formID) in batched.enumerated() { firstPages[formID] = ok(offset + 1) }
        // Forms new to LeadFlow (or beyond the first batch): their first pages together.
        let rest = try await windows(for: job, formIDs: forms.map(\.id).filter { firstPages[$0] == nil }, record: record, now: now)
        for chunk in stride(from: 0, to: rest.forms.count, by: GraphClient.batchLimit) where rest.forms.count > 1 {
            let formIDs = Array(rest.forms[chunk..<min(chunk + GraphClient.batchLimit, rest.forms.count)])
            guard let pages = try? await graph.batch(formIDs.map { graph.leadsCall(formID: $0, window: rest.windows[$0]!) }, token: token,
                                                     context: "first pages of page \(record.pageID)") else { break }
            for (offset, formID) in formIDs.enumerated() where pages[offset]?.status == 200 { firstPages[formID] = pages[offset]?.body }
        }
        return (forms, firstPages)
    }

    /// The forms (of those given) a job reads, and each one's window.
    private func windows(for job: Job, formIDs all: [String], record: ConnectionRecord,
                         now: Date) async throws -> (forms: [String], windows: [String: LeadWindow]) {
        let overlap = TimeInterval(pipeline.window.overlapMinutes * 60)
        var forms = all
        var windows: [String: LeadWindow] = [:]
        switch job {
        case .scheduled:
            let watermarks = try await leads.watermarks(connectionID: record.id)
            for form in forms {
                windows[form] = LeadWindow(from: watermarks[form].map { $0.addingTimeInterval(-overlap) } ?? pipeline.window.start, to: now)
            }
        case .voidPeriod(let period):
            let done = try await leads.backfilledForms(voidPeriodID: period.id)
            forms = forms.filter { !done.contains($0) }
            let window = Self.backfillWindow(period, overlap: overlap, now: now)
            for form in forms { windows[form] = window }
        case .window(let window):
            for form in forms { windows[form] = window }
        }
        return (forms, windows)
    }

    /// The window a void period's backfill reads: the period widened by the overlap on both
    /// sides, never past the run's clock.
    static func backfillWindow(_ period: VoidPeriod, overlap: TimeInterval, now: Date) -> LeadWindow {
        let end = min((period.endedAt ?? now).addingTimeInterval(overlap), now)
        return LeadWindow(from: period.startedAt.addingTimeInterval(-overlap), to: end)
    }

    static func archivePass(_ job: Job) -> ArchiveSubject.Pass {
        switch job {
        case .scheduled: return .scheduled
        case .voidPeriod(let period): return .voidPeriod(period.id)
        case .window: return .window
        }
    }

    static func manifest(runID: Int64, record: ConnectionRecord, pipeline: Pipeline, job: Job, windows: [String: LeadWindow],
                         pages: [LeadSpool.RawPageFile], now: Date) throws -> Data {
        let object: [String: Any] = [
            "run_id": runID, "job": job.description, "connection": record.label, "instance": record.instance, "page_id": record.pageID,
            "graph_api_version": pipeline.graph.apiVersion, "created_at": UTCTime.iso8601(now),
            "windows": windows.mapValues { window -> [String: Any] in ["from": window.from.map(UTCTime.iso8601) as Any? ?? NSNull(), "to": UTCTime.iso8601(window.to)] },
            "counts": ["pages": pages.count, "leads": pages.reduce(0) { $0 + $1.leads }],
            "members": Dictionary(pages.map { ($0.name, $0.sha256) }, uniquingKeysWith: { first, _ in first }),
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }
}

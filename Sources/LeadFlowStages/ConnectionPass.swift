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

    func run(_ record: ConnectionRecord, token: AccessToken, job: Job, runID: Int64, fences: PassFences, now: Date,
             timings: inout RunStage.Timings, progress: (String) -> Void) async throws -> RunStage.ConnectionSummary {
        var clock = ContinuousClock.now
        func lap() -> Double {
            let elapsed = (ContinuousClock.now - clock).timeInterval
            clock = ContinuousClock.now
            return elapsed
        }
        // This pass's own account: its Graph calls (every form's too), stages, forms, archive.
        let tally = GraphTally()
        var own = RunStage.Timings()
        var forms: [RunStage.FormSummary] = []
        var archived: RunStage.ArchiveSummary?
        defer { timings = timings + own }
        func summary(_ state: RunStage.ConnectionSummary.State, _ counts: LoadCounts = LoadCounts(), pages: Int = 0) -> RunStage.ConnectionSummary {
            var summary = RunStage.ConnectionSummary(label: record.label, job: job.kind, state: state, counts: counts, pages: pages)
            summary.connectionID = record.id
            summary.instance = record.instance
            summary.graph = tally.counts
            summary.timings = own
            summary.forms = forms
            summary.archive = archived
            return summary
        }
        let allForms: [GraphForm]
        var firstPages: [String: Data]
        do {
            (allForms, firstPages) = try await tally.recording { try await openingReads(record, token: token, job: job, now: now) }
        } catch let error as GraphError where error.voidCause != nil {
            own.extract += lap()
            return summary(try await void(record, cause: error.voidCause!, detail: error.causeDetail ?? error.code, now: now))
        }
        try await leads.saveForms(allForms, connectionID: record.id, runID: runID, at: now)
        let (formIDs, windows) = try await windows(for: job, formIDs: allForms.map(\.id), record: record, now: now)
        let wanted = Set(formIDs.map(\.self))
        firstPages = firstPages.filter { wanted.contains($0.key) }
        let reading = allForms.filter { wanted.contains($0.id) }

        let folder = spoolRoot.appendingPathComponent("run-\(runID)/connection-\(record.id)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try await makeSpool(folder: folder, record: record, forms: allForms, now: now)
        progress("\(record.label): \(job): reading \(reading.count) form\(reading.count == 1 ? "" : "s")")
        let extractor = ConnectionExtractor(client: graph, concurrency: pipeline.graph.pageConcurrency, logger: logger)
        let formTallies = Dictionary(reading.map { ($0.id, GraphTally()) }, uniquingKeysWith: { first, _ in first })
        let outcome = try await tally.recording {
            try await extractor.extract(forms: reading, token: token, window: { windows[$0.id] ?? LeadWindow(from: nil, to: now) },
                                        sink: spool, firstPages: firstPages, tally: { formTallies[$0] })
        }
        own.extract += lap()

        var completed: [String: LeadStreamSummary]
        var failures: [String: FormFailure] = [:]
        var state = RunStage.ConnectionSummary.State.loaded
        switch outcome {
        case .completed(_, let summaries):
            completed = summaries
        case .partial(_, let summaries, let failed):
            completed = summaries
            failures = failed
            state = .partial(failed.keys.sorted())
        case .void(let cause, let detail, _, _, let summaries):
            // The forms read to their end before the token failed still load; nothing more is asked.
            completed = summaries
            state = try await void(record, cause: cause, detail: detail ?? cause.rawValue, now: now)
        }
        let loaded = try await archiveAndLoad(spool, forms: Set(completed.keys), windows: windows, record: record, job: job,
                                              runID: runID, fences: fences, now: now, timings: &own, progress: progress)
        archived = loaded.archive
        var counts = loaded.counts
        if case .scheduled = job, !completed.isEmpty, !state.isVoid {
            let reading = allForms.filter { completed[$0.id] != nil }
            counts = counts + (try await tally.recording {
                try await reconcile(record, token: token, forms: reading, windows: windows, runID: runID, fences: fences, now: now,
                                    timings: &own, progress: progress)
            })
        }
        if case .voidPeriod(let period) = job, state == .loaded {
            // Every form's window is in (now or by an earlier, killed backfill).
            try await leads.markBackfilled(voidPeriodID: period.id, runID: runID, at: now)
        }
        forms = reading.map { form in
            var entry = RunStage.FormSummary(formID: form.id)
            entry.window = windows[form.id]
            let formPages = spool.pages(of: [form.id])
            entry.pages = formPages.count
            entry.leads = formPages.reduce(0) { $0 + $1.leads }
            entry.graph = formTallies[form.id]?.counts ?? GraphTally.Counts()
            entry.counts = loaded.formCounts[form.id] ?? LoadCounts()
            entry.failure = failures[form.id]
            return entry
        }
        logger.info("connection loaded", metadata: ["connection.id": "\(record.id)", "run.id": "\(runID)", "run.job": "\(job)",
                                                    "leads.inserted": "\(counts.inserted)", "leads.updated": "\(counts.updated)",
                                                    "leads.rejected": "\(counts.rejected)", "leads.late": "\(counts.late)",
                                                    "leads.missing": "\(counts.missing)"])
        return summary(state, counts, pages: loaded.pages)
    }

    /// Voids the connection for a token failure met in this pass, unless it was reauthenticated
    /// since the pass began: then the failure was the replaced token's, and nothing is voided.
    private func void(_ record: ConnectionRecord, cause: VoidCause, detail: String, now: Date) async throws -> RunStage.ConnectionSummary.State {
        let opening = try await connections.openVoidPeriod(connectionID: record.id, cause: cause, detail: detail, since: now, now: now,
                                                           cycle: record.authenticatedAt)
        return opening == .reauthenticated ? .idle(Self.reauthenticatedDuringRun) : .void(cause)
    }

    static let reauthenticatedDuringRun = "reauthenticated during the run; the next run reads it with the new token"

    /// A spool for the connection's forms, keeping its erased people out.
    private func makeSpool(folder: URL, record: ConnectionRecord, forms: [GraphForm], now: Date) async throws -> LeadSpool {
        let contexts = Dictionary(forms.map {
            ($0.id, LeadContext(instance: record.instance, connectionID: record.id, pageID: record.pageID, formID: $0.id, formName: $0.name))
        }, uniquingKeysWith: { first, _ in first })
        return try LeadSpool(folder: folder, transformer: LeadTransformer(pipeline: pipeline), contexts: contexts,
                             erased: try ErasureList(tombstones: try await leads.erasureHashes(instance: record.instance), hasher: erasure),
                             now: now)
    }

    /// What `archiveAndLoad` did.
    struct Loaded {
        var counts = LoadCounts()
        var formCounts: [String: LoadCounts] = [:]
        var pages = 0
        var archive: RunStage.ArchiveSummary?
    }

    /// Archives the spooled pages of these forms, then loads each form's rows in a
    /// transaction of its own. Only what the tables do not hold yet is archived: a pass that
    /// read nothing, or only the overlap's re-reads of leads loaded byte for byte before,
    /// writes no archive and no lead, and commits no more than its windows' bookkeeping.
    /// `reread` (a reconciliation's depth) loads leads without moving any watermark.
    private func archiveAndLoad(_ spool: LeadSpool, forms: Set<String>, windows: [String: LeadWindow], record: ConnectionRecord, job: Job,
                                reread: Int? = nil, runID: Int64, fences: PassFences, now: Date, timings: inout RunStage.Timings,
                                progress: (String) -> Void) async throws -> Loaded {
        var clock = ContinuousClock.now
        func lap() -> Double {
            let elapsed = (ContinuousClock.now - clock).timeInterval
            clock = ContinuousClock.now
            return elapsed
        }
        let pages = spool.pages(of: forms)
        var result = Loaded()
        result.pages = pages.count
        guard !forms.isEmpty else { return result }
        let fresh = try await holdsSomethingNew(spool, forms: forms, instance: record.instance)
        var archiveID: Int64?
        if fresh {
            // Archive first: durable before any row that points at it commits.
            progress("\(record.label): archiving \(pages.count) page\(pages.count == 1 ? "" : "s")")
            let froms = forms.compactMap { windows[$0]?.from }
            let manifest = try Self.manifest(runID: runID, record: record, pipeline: pipeline, job: job,
                                             windows: windows.filter { forms.contains($0.key) }, pages: pages, now: now)
            let archive = try await archiver.archive(members: pages.map { ($0.name, $0.file) }, manifest: manifest,
                                                     subject: ArchiveSubject(instance: record.instance, pageID: record.pageID, runID: runID,
                                                                             pass: reread.map { .reread($0) } ?? Self.archivePass(job)))
            let id = try await leads.saveArchive(archive, runID: runID, connectionID: record.id,
                                                 windowFrom: froms.count == forms.count ? froms.min() : nil,
                                                 windowTo: windows.filter { forms.contains($0.key) }.values.map(\.to).max() ?? now, at: now)
            archiveID = id
            result.archive = RunStage.ArchiveSummary(id: id, path: archive.path, bytes: archive.bytes)
            timings.archive += lap()
            PassLiveness.tick()
        }
        progress("\(record.label): loading")
        let marks = fresh ? [:] : try await leads.watermarks(connectionID: record.id)
        for formID in forms.sorted() {
            let rows = try spool.rows(of: formID)
            let window = windows[formID] ?? LeadWindow(from: nil, to: now)
            let commit: WindowCommit
            switch job {
            // The watermark is the newest lead the server gave (never the local clock),
            // moved in the transaction that commits the window. A re-read leaves it alone.
            case .scheduled: commit = reread == nil ? .watermark(rows?.newest) : .leadsOnly
            case .voidPeriod(let period): commit = .backfill(voidPeriodID: period.id, window: window)
            case .window: commit = .leadsOnly
            }
            var batch = WindowBatch(runID: runID, connectionID: record.id, instance: record.instance, formID: formID, window: window,
                                    archiveID: archiveID, commit: commit, claim: fences.claim, at: now, rows: rows?.file,
                                    rowCount: rows?.rows ?? 0, rejections: rows?.rejections ?? [])
            batch.withheld = rows?.withheld ?? []
            batch.lease = fences.lease
            guard fresh else {
                result.formCounts[formID, default: LoadCounts()].unchanged = pages.filter { $0.formID == formID }.reduce(0) { $0 + $1.leads }
                switch commit {
                case .watermark(let newest):
                    // Forward only; when it is there already (and no erased lead to record), no transaction at all.
                    guard batch.withheld.isEmpty ? (newest.map { new in marks[formID].map { $0 < new } ?? true } ?? false) : true else { continue }
                case .backfill: break
                case .leadsOnly: if batch.withheld.isEmpty { continue }
                }
                (batch.rows, batch.rowCount, batch.rejections) = (nil, 0, [])
                _ = try await leads.loadWindow(batch)
                continue
            }
            if !job.kind.isBackfill, rows == nil || (rows!.rows == 0 && rows!.rejections.isEmpty && rows!.withheld.isEmpty && rows!.newest == nil) {
                continue // nothing read: no transaction
            }
            try Task.checkCancellation() // the pass's time limit ends it between windows
            result.formCounts[formID] = try await leads.loadWindow(batch)
            // One window committed, the others not yet: a rerun must resume after it.
            DebugKill.point(DebugKill.committed)
            PassLiveness.tick()
        }
        result.counts = result.formCounts.values.reduce(LoadCounts()) { $0 + $1 }
        result.counts.erased = spool.erasedCount
        timings.load += lap()
        return result
    }

    /// Facebook's counters of the forms read to their end against what the instance holds
    /// (`FormTally`); where leads are missing and no void period explains them, deeper
    /// windows are read again (`ReconciliationPolicy`: newest first, paced) until the counts
    /// agree. What stays missing is recorded for `status`, the gap report and the metrics.
    private func reconcile(_ record: ConnectionRecord, token: AccessToken, forms: [GraphForm], windows: [String: LeadWindow],
                           runID: Int64, fences: PassFences, now: Date, timings: inout RunStage.Timings,
                           progress: (String) -> Void) async throws -> LoadCounts {
        // With a configured start, Facebook's counts include leads the pipeline never reads.
        guard pipeline.window.start == nil else { return LoadCounts() }
        let policy = ReconciliationPolicy()
        let facebook = Dictionary(forms.compactMap { form in
            form.leadsCount.map { (form.id, max(0, $0 - max(0, form.expiredLeadsCount ?? 0))) }
        }, uniquingKeysWith: { first, _ in first })
        guard !facebook.isEmpty else { return LoadCounts() }
        let last = try await leads.reconciliations(instance: record.instance, formIDs: facebook.keys.sorted())
        // A form whose count has not moved since a check that missed nothing is not counted again.
        let moved = facebook.keys.filter { id in !(last[id].map { $0.facebook == facebook[id]! && $0.missing == 0 } ?? false) }.sorted()
        var counts = LoadCounts()
        guard !moved.isEmpty else { return counts }
        let held = try await leads.heldCounts(instance: record.instance, formIDs: moved)
        var tallies = Dictionary(uniqueKeysWithValues: moved.map { ($0, FormTally(formID: $0, facebook: facebook[$0]!, held: held[$0] ?? 0)) })
        var saved = Dictionary(uniqueKeysWithValues: moved.map {
            ($0, last[$0] ?? FormReconciliation(formID: $0, checkedAt: now, facebook: 0, held: 0))
        })

        var slices: [String: [LeadWindow]] = [:]
        for formID in moved where policy.isDue(tallies[formID]!, last: last[formID], now: now) {
            guard let from = windows[formID]?.from else { continue } // the whole history was just read
            slices[formID] = policy.slices(scheduledFrom: from, now: now, floor: nil, last: last[formID])
        }
        // A void period not yet backfilled explains a shortfall: its backfill reads it.
        if !slices.isEmpty, try await !leads.voidPeriodsAwaitingBackfill(connectionID: record.id).isEmpty { slices = [:] }
        if !slices.isEmpty {
            progress("\(record.label): \(slices.count) form\(slices.count == 1 ? "" : "s") short of Facebook's count; reading deeper")
            logger.info("reconciling", metadata: ["connection.id": "\(record.id)", "forms": "\(slices.keys.sorted())",
                                                  "leads.missing": "\(slices.keys.reduce(0) { $0 + tallies[$1]!.missing })"])
        }
        let byID = Dictionary(forms.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var depth = 0
        while true {
            let reading = slices.filter { depth < $0.value.count && tallies[$0.key]!.missing > 0 }.mapValues { $0[depth] }
            if reading.isEmpty { break }
            let folder = spoolRoot.appendingPathComponent("run-\(runID)/connection-\(record.id)-reread-\(depth)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let spool = try await makeSpool(folder: folder, record: record, forms: forms, now: now)
            let extractor = ConnectionExtractor(client: graph, concurrency: pipeline.graph.pageConcurrency, logger: logger)
            let started = ContinuousClock.now
            let outcome = try await extractor.extract(forms: reading.keys.sorted().map { byID[$0]! }, token: token,
                                                      window: { reading[$0.id]! }, sink: spool)
            timings.extract += (ContinuousClock.now - started).timeInterval
            let read: [String: LeadStreamSummary]
            switch outcome {
            case .completed(_, let summaries), .partial(_, let summaries, _): read = summaries
            case .void(let cause, let detail, _, _, let summaries):
                read = summaries
                _ = try await void(record, cause: cause, detail: detail ?? cause.rawValue, now: now)
            }
            let loaded = try await archiveAndLoad(spool, forms: Set(read.keys), windows: reading, record: record, job: .scheduled,
                                                  reread: depth, runID: runID, fences: fences, now: now, timings: &timings, progress: progress)
            counts = counts + loaded.counts
            counts.late += loaded.counts.inserted
            let recount = try await leads.heldCounts(instance: record.instance, formIDs: read.keys.sorted())
            for (formID, count) in recount { tallies[formID] = FormTally(formID: formID, facebook: facebook[formID]!, held: count) }
            for formID in reading.keys {
                saved[formID]!.rereadAt = now
                if policy.reachesDeepest(Array(slices[formID]!.prefix(depth + 1)), now: now, floor: nil) { saved[formID]!.deepestRereadAt = now }
            }
            if case .void = outcome { break }
            depth += 1
        }
        for formID in moved {
            var reconciliation = saved[formID]!
            reconciliation.checkedAt = now
            reconciliation.facebook = tallies[formID]!.facebook
            reconciliation.held = tallies[formID]!.held
            reconciliation.shortSince = tallies[formID]!.missing > 0 ? (reconciliation.shortSince ?? now) : nil
            try await leads.saveReconciliation(reconciliation, instance: record.instance, connectionID: record.id)
        }
        counts.missing = tallies.values.reduce(0) { $0 + $1.missing }
        if counts.missing > 0 {
            logger.warning("leads missing", metadata: ["connection.id": "\(record.id)", "leads.missing": "\(counts.missing)"])
        }
        return counts
    }


    /// Whether the spooled leads and rejections of these forms hold anything the tables do
    /// not already hold byte for byte (same lead, same raw hash). A rejection without a lead
    /// id cannot be matched, and too many leads to list count as new.
    private func holdsSomethingNew(_ spool: LeadSpool, forms: Set<String>, instance: String) async throws -> Bool {
        let prints = spool.leadFingerprints
        if prints.overflowed { return true }
        let spooled = prints.of(forms)
        let rejected = spool.rejections(of: forms)
        if rejected.contains(where: { $0.rejection.leadID == nil }) { return true }
        let total = spooled.leadIDs.count + rejected.count
        guard total > 0 else { return false }
        let known = try await leads.countAlreadyLoaded(instance: instance, leadIDs: spooled.leadIDs, hashes: spooled.hashes,
                                                       rejectedLeadIDs: rejected.map { $0.rejection.leadID! },
                                                       rejectedHashes: rejected.map(\.rawSHA256))
        return known < total
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

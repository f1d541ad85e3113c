import Foundation

/// Counts of one load, per form window or summed for a run.
public struct LoadCounts: Sendable, Equatable {
    public var inserted = 0
    public var updated = 0
    public var unchanged = 0
    public var rejected = 0
    /// Leads of erased people, kept out.
    public var erased = 0
    /// Leads loaded by re-reading deeper windows (Graph returned them late); in `inserted` too.
    public var late = 0
    /// Leads Facebook's form counters hold and the instance does not, after this run's reconciliation.
    public var missing = 0

    public init() {}

    public static func + (a: LoadCounts, b: LoadCounts) -> LoadCounts {
        var sum = a
        sum.inserted += b.inserted
        sum.updated += b.updated
        sum.unchanged += b.unchanged
        sum.rejected += b.rejected
        sum.erased += b.erased
        sum.late += b.late
        sum.missing += b.missing
        return sum
    }
}

/// What a run was (`runs.kind`).
public enum RunKind: String, Sendable, Equatable {
    case scheduled, backfill, demo
}

/// How a run ended, or that it is still running (`runs.status`).
public enum RunStatus: String, Sendable, Equatable {
    case running, succeeded, partial, failed, abandoned
}

/// A published, verified archive of a run's raw pages for one connection.
public struct ArchivedRun: Sendable, Equatable {
    /// Relative to LEADFLOW_HOME.
    public let path: String
    public let sha256: String
    public let bytes: Int64
    public let members: Int

    public init(path: String, sha256: String, bytes: Int64, members: Int) {
        self.path = path
        self.sha256 = sha256
        self.bytes = bytes
        self.members = members
    }
}

/// Whose raw pages an archive holds: the archiver names the file after it.
public struct ArchiveSubject: Sendable, Equatable {
    public enum Pass: Sendable, Equatable {
        case scheduled
        case voidPeriod(Int64)
        case window
        /// A reconciliation's re-read of a deeper window (`ReconciliationPolicy`), by depth.
        case reread(Int)
    }
    public let instance: String
    public let pageID: String
    public let runID: Int64
    public let pass: Pass

    public init(instance: String, pageID: String, runID: Int64, pass: Pass) {
        self.instance = instance
        self.pageID = pageID
        self.runID = runID
        self.pass = pass
    }
}

/// Writes the raw pages of one connection's run into one archive, durably, and verifies it.
public protocol RawArchiver: Sendable {
    /// - Parameters:
    ///   - members: archive member name → the spooled file holding it.
    ///   - manifest: the `manifest.json` bytes (written last, hashes of every other member).
    func archive(members: [(name: String, file: URL)], manifest: Data, subject: ArchiveSubject) async throws -> ArchivedRun
    /// The same under a path of the caller's (an erasure's rewrite beside the original).
    func archive(members: [(name: String, file: URL)], manifest: Data, relativePath: String) async throws -> ArchivedRun
    /// Every member of an archive, in order (`manifest.json` included).
    func members(of relativePath: String) async throws -> [(name: String, data: Data)]
    /// Removes an archive file (one superseded by an erasure, pruned, or one no row points at).
    func remove(_ relativePath: String) async throws
    /// Whether the file is there.
    func exists(_ relativePath: String) async -> Bool
    /// Checks the file end to end: its SHA-256 against `sha256`, every member against the
    /// manifest. Returns the number of members; throws what does not match.
    func verify(_ relativePath: String, sha256: String) async throws -> Int
    /// Every file under the archive folder, `.partial-*` ones included, relative to
    /// LEADFLOW_HOME; links are not followed.
    func storedFiles() async throws -> [String]
}

/// An archive file the database lists is not on this host's disk: another host's
/// LEADFLOW_HOME holds it, or it was lost.
public struct ArchiveFileMissing: LeadFlowError, Equatable {
    public let path: String
    public var code: String { "archive.missing" }
    public var disposition: Disposition { .fatal }
    public var description: String { "\(code): \(path) is not on this host" }

    public init(path: String) {
        self.path = path
    }
}

/// The names LeadFlow gives archive files, read back: `run-<id>[-void-<period>|-backfill]`,
/// `.erased-<stamp>` when an erasure rewrote it, then `.tar`, `.tar.gz` or `.tar.zst`; and
/// `.<that name>.partial-<pid>-<random>` while one is being written (`ArchiveWriter`).
public struct ArchiveFileName: Sendable, Equatable {
    /// The run whose pass wrote the original.
    public let runID: Int64
    /// An erasure's rewrite.
    public let erasure: Bool
    /// A temporary file of a write in progress (or of a killed one).
    public let partial: Bool

    /// nil: not a name LeadFlow gives (left alone by every sweep).
    public init?(_ fileName: String) {
        var name = Substring(fileName)
        var partial = false
        if name.hasPrefix("."), let marker = name.range(of: ".partial-") {
            name = name[name.index(after: name.startIndex)..<marker.lowerBound]
            partial = true
        }
        guard name.hasPrefix("run-"), [".tar", ".tar.gz", ".tar.zst"].contains(where: { name.hasSuffix($0) }) else { return nil }
        let digits = name.dropFirst(4).prefix { $0.isASCII && $0.isNumber }
        guard let runID = Int64(digits) else { return nil }
        self.runID = runID
        self.erasure = name.contains(".erased-")
        self.partial = partial
    }
}

/// A run still marked running, as a sweep sees it.
public struct RunningRun: Sendable, Equatable {
    public let id: Int64
    public let host: String
    /// The process that started it (its host's pid).
    public let processID: Int32?
    /// Its lease, renewed while its process lives, has ended (by the server's clock).
    public let leaseLapsed: Bool

    public init(id: Int64, host: String, processID: Int32?, leaseLapsed: Bool) {
        self.id = id
        self.host = host
        self.processID = processID
        self.leaseLapsed = leaseLapsed
    }
}

/// Where runs, forms, watermarks, archives and leads are stored (Postgres: `LeadStore`).
public protocol LeadRepository: Sendable {
    /// A run row, its lease ending `lease` from now (server clock) unless renewed.
    func startRun(kind: RunKind, pipeline: String, host: String, processID: Int32, startedAt: Date, upperBound: Date,
                  lease: Duration) async throws -> Int64
    /// Moves a running run's lease end to `lease` from now: its process is alive.
    func renewRunLease(_ runID: Int64, lease: Duration) async throws
    func finishRun(_ runID: Int64, status: RunStatus, counters: [String: Int], at: Date) async throws
    /// The run's end with what each pass did, in one transaction: the run row (status,
    /// counters, failed passes), a `run_passes` row per pass and a `run_forms` row per form,
    /// and the running totals the metrics' counters report.
    func finishRun(_ runID: Int64, status: RunStatus, counters: [String: Int], passes: [RunPassRecord], at: Date) async throws
    /// How many of these leads (id and raw hash, in step) are loaded already with that very
    /// raw hash, plus how many of these rejections are recorded already: all of them means a
    /// pass read nothing new.
    func countAlreadyLoaded(instance: String, leadIDs: [String], hashes: [String], rejectedLeadIDs: [String],
                            rejectedHashes: [String]) async throws -> Int
    /// Runs still marked running, on any host.
    func runningRuns() async throws -> [RunningRun]
    /// Marks a run whose process is gone (killed, crashed) as abandoned.
    func abandonRun(_ runID: Int64, at: Date) async throws
    /// Runs that ended failed or abandoned since the last sweep of the archive folder: what
    /// they were writing may have no row.
    func runsToSweep() async throws -> [Int64]
    func markSwept(_ runIDs: [Int64], at: Date) async throws
    /// Every archive path the database records, and whether an erasure superseded it.
    func archivePaths() async throws -> [String: Bool]
    /// The erasure lock, if no erasure holds it: an erasure's rewrite has no row until the
    /// erasure commits it, so archive files are swept only while no erasure runs.
    func tryLockErasures() async throws -> Bool
    func unlockErasures() async throws
    /// Takes the connection for `holder` for a lease (nil: another holder's lease runs).
    /// A lease not renewed in time is taken over, its fence raised.
    func acquireConnection(_ connectionID: Int64, holder: String, lease: Duration) async throws -> ConnectionLease?
    /// Extends the lease; false when another holder took it over.
    func renewConnection(_ lease: ConnectionLease) async throws -> Bool
    /// Ends the lease at once (the fence stays, for the next holder to raise).
    func releaseConnection(_ lease: ConnectionLease) async throws
    func saveForms(_ forms: [GraphForm], connectionID: Int64, runID: Int64, at: Date) async throws
    func saveArchive(_ archive: ArchivedRun, runID: Int64, connectionID: Int64, windowFrom: Date?, windowTo: Date, at: Date) async throws -> Int64
    /// One transaction: the window's ready rows (new ones copied straight in, ones the table
    /// may hold upserted), its rejections, and what the batch's commit records. Under a
    /// claim, the transaction first checks the claim's fence (`LeaseLost` if another
    /// worker took the connection over) and holds it until the commit.
    func loadWindow(_ batch: WindowBatch) async throws -> LoadCounts
    /// The forms of the connection an earlier run saw.
    func formIDs(connectionID: Int64) async throws -> [String]
    /// The watermarks of a connection's forms, in one query.
    func watermarks(connectionID: Int64) async throws -> [String: Date]
    /// What the last reconciliation of each of the instance's forms found.
    func reconciliations(instance: String, formIDs: [String]) async throws -> [String: FormReconciliation]
    /// Per form, the lead ids the instance has: loaded, rejected, or withheld (erased).
    func heldCounts(instance: String, formIDs: [String]) async throws -> [String: Int]
    func saveReconciliation(_ reconciliation: FormReconciliation, instance: String, connectionID: Int64) async throws

    /// The keyed hashes of the people erased from this instance (or from every instance),
    /// by the erasure key each was written under: kept out of its archives and tables (`ErasureList`).
    func erasureHashes(instance: String) async throws -> [String: Set<String>]
    /// Closed void periods of the connection that no backfill has completed yet, oldest first.
    func voidPeriodsAwaitingBackfill(connectionID: Int64) async throws -> [VoidPeriod]
    /// The forms whose backfill window of this void period has committed.
    func backfilledForms(voidPeriodID: Int64) async throws -> Set<String>
    /// Every form's window committed: the period is recovered as far as Facebook still returns it.
    func markBackfilled(voidPeriodID: Int64, runID: Int64, at: Date) async throws
}

/// What a committed window records besides its leads.
public enum WindowCommit: Sendable, Equatable {
    /// A scheduled window: the form's watermark moves forward to the newest lead the server
    /// gave (nil: none), never backwards.
    case watermark(Date?)
    /// A window of a void period's backfill: it is marked done, so a killed backfill resumes
    /// after it; the scheduled watermark is left alone.
    case backfill(voidPeriodID: Int64, window: LeadWindow)
    /// An ad hoc backfill (`--since/--until`): only the leads.
    case leadsOnly
}

/// A rejected lead as the extract stage spooled it: the reasons and the hash of its raw bytes.
public struct SpooledRejection: Sendable, Equatable {
    public let rejection: LeadRejection
    public let rawSHA256: String

    public init(_ rejection: LeadRejection, rawSHA256: String) {
        self.rejection = rejection
        self.rawSHA256 = rawSHA256
    }
}

/// One form window, ready to load: data, not code. Its rows were parsed, transformed and
/// hashed at extract time and spooled in the load's own format (`LeadRow`, COPY text): the
/// load streams the file and stamps the window's archive and run on each row.
public struct WindowBatch: Sendable {
    public var runID: Int64
    public var connectionID: Int64
    public var instance: String
    public var formID: String
    /// The span the leads were read over (leads loaded before from around it may come again).
    public var window: LeadWindow
    /// The archive holding the rows' raw leads; nil only for a window with no rows and no
    /// rejections (its bookkeeping alone: a watermark, a backfill window).
    public var archiveID: Int64?
    public var commit: WindowCommit
    public var claim: WorkClaim?
    public var at: Date
    /// The ready rows, one per line (nil: none).
    public var rows: URL?
    public var rowCount: Int
    public var rejections: [SpooledRejection]
    /// Ids of leads read but kept out because their person was erased: recorded, so the
    /// form's counts still agree with Facebook's.
    public var withheld: [String] = []
    /// The connection's lease the pass holds: the commit checks its fence (`LeaseLost`).
    public var lease: ConnectionLease?

    public init(runID: Int64, connectionID: Int64, instance: String, formID: String, window: LeadWindow, archiveID: Int64?,
                commit: WindowCommit, claim: WorkClaim?, at: Date, rows: URL?, rowCount: Int, rejections: [SpooledRejection]) {
        self.runID = runID
        self.connectionID = connectionID
        self.instance = instance
        self.formID = formID
        self.window = window
        self.archiveID = archiveID
        self.commit = commit
        self.claim = claim
        self.at = at
        self.rows = rows
        self.rowCount = rowCount
        self.rejections = rejections
    }
}

/// One connection's pass of a run, as the run tables keep it (`run_passes`, `run_forms`):
/// what `leadflow runs show` prints and the metrics count.
public struct RunPassRecord: Sendable, Equatable {
    /// `preflight` (the connection went no further), `scheduled`, `void_period`, `window`,
    /// or `backfill` (a backfill that found nothing to read).
    public var job: String
    public var voidPeriodID: Int64?
    public var connectionID: Int64
    public var instance: String
    /// `loaded`, `void`, `skipped`, `partial` or `idle`; `detail` says more (cause, reason).
    public var state: String
    public var detail: String?
    public var pages: Int
    public var counts: LoadCounts
    public var graph: GraphTally.Counts
    public var seconds: StageSeconds
    public var archiveID: Int64?
    public var archiveBytes: Int64?
    public var forms: [RunFormRecord]

    public init(job: String, voidPeriodID: Int64?, connectionID: Int64, instance: String, state: String, detail: String?, pages: Int,
                counts: LoadCounts, graph: GraphTally.Counts, seconds: StageSeconds, archiveID: Int64?, archiveBytes: Int64?,
                forms: [RunFormRecord]) {
        self.job = job
        self.voidPeriodID = voidPeriodID
        self.connectionID = connectionID
        self.instance = instance
        self.state = state
        self.detail = detail
        self.pages = pages
        self.counts = counts
        self.graph = graph
        self.seconds = seconds
        self.archiveID = archiveID
        self.archiveBytes = archiveBytes
        self.forms = forms
    }

    /// Whether the pass failed (a connection skipped, a form that could not be read).
    public var failed: Bool { state == "skipped" || state == "partial" }
}

/// Seconds spent in each stage.
public struct StageSeconds: Sendable, Equatable {
    public var preflight = 0.0
    public var extract = 0.0
    public var archive = 0.0
    public var load = 0.0

    public init(preflight: Double = 0, extract: Double = 0, archive: Double = 0, load: Double = 0) {
        self.preflight = preflight
        self.extract = extract
        self.archive = archive
        self.load = load
    }

    public static func + (a: StageSeconds, b: StageSeconds) -> StageSeconds {
        StageSeconds(preflight: a.preflight + b.preflight, extract: a.extract + b.extract, archive: a.archive + b.archive, load: a.load + b.load)
    }
}

/// One form's window in a pass.
public struct RunFormRecord: Sendable, Equatable {
    public var formID: String
    public var window: LeadWindow?
    public var pages: Int
    public var leads: Int
    public var counts: LoadCounts
    public var graph: GraphTally.Counts
    /// The error's stable code and safe description when the form could not be read.
    public var errorCode: String?
    public var error: String?

    public init(formID: String, window: LeadWindow?, pages: Int, leads: Int, counts: LoadCounts, graph: GraphTally.Counts,
                errorCode: String?, error: String?) {
        self.formID = formID
        self.window = window
        self.pages = pages
        self.leads = leads
        self.counts = counts
        self.graph = graph
        self.errorCode = errorCode
        self.error = error
    }
}

/// An archive file as recorded: what a prune verifies before it removes it.
public struct ArchiveFile: Sendable, Equatable {
    public let id: Int64
    /// Relative to LEADFLOW_HOME.
    public let path: String
    public let sha256: String
    public let bytes: Int64

    public init(id: Int64, path: String, sha256: String, bytes: Int64) {
        self.id = id
        self.path = path
        self.sha256 = sha256
        self.bytes = bytes
    }
}

/// What a prune of archives did, recorded with it in `prunes`.
public struct ArchivePruneRecord: Sendable, Equatable {
    public var cutoff: Date
    public var at: Date
    public var host: String
    public var removed: [Int64]
    public var bytes: Int64
    public var kept: Int
    /// Archives the database listed whose file was gone already.
    public var alreadyMissing: Int
    /// Archives whose file did not match its record: left in place.
    public var refused: Int

    public init(cutoff: Date, at: Date, host: String, removed: [Int64], bytes: Int64, kept: Int, alreadyMissing: Int, refused: Int) {
        self.cutoff = cutoff
        self.at = at
        self.host = host
        self.removed = removed
        self.bytes = bytes
        self.kept = kept
        self.alreadyMissing = alreadyMissing
        self.refused = refused
    }
}

/// Where archives are recorded, for pruning them (Postgres: `ArchiveStore`).
public protocol ArchiveRepository: Sendable {
    /// Archives in force (neither superseded nor pruned) created before `cutoff`: those a
    /// prune may remove, and how many of them it must keep (see `ArchiveStore`).
    func pruneCandidates(createdBefore cutoff: Date) async throws -> (removable: [ArchiveFile], kept: Int)
    /// Marks the removed archives pruned and records the prune, in one transaction.
    func recordPrune(_ record: ArchivePruneRecord) async throws
    /// Paths of archives marked pruned: their files should be gone (a prune cut short
    /// between its record and its removals leaves some).
    func prunedPaths() async throws -> [String]
}

/// What the metrics read from Postgres after a run: the same from any worker, and kept
/// across runs (a textfile is rewritten whole each time).
public struct MetricsFacts: Sendable, Equatable {
    /// The run row's end (on the run's clock, `LEADFLOW_NOW` when set); nil without a run.
    public var runFinishedAt: Date?
    /// The end of the last run of this kind that finished without a failure (exit 0 or 2).
    public var lastSuccessAt: Date?
    /// `metric_totals`: running totals by name and label value.
    public var totals: [MetricTotal] = []
    /// Deliveries not yet made, by channel (`unrouted`: events no notifier has seen yet).
    public var pendingNotifications: [String: Int] = [:]
    /// Archive files in force on disk (neither pruned nor superseded), and their bytes.
    public var archives = 0
    public var archiveBytes: Int64 = 0

    public init() {}
}

/// One running total of `metric_totals`.
public struct MetricTotal: Sendable, Equatable {
    public let name: String
    public let label: String
    public let value: Double

    public init(name: String, label: String, value: Double) {
        self.name = name
        self.label = label
        self.value = value
    }
}

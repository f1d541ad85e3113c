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
    /// Removes an archive file (one superseded by an erasure).
    func remove(_ relativePath: String) async throws
}

/// Where runs, forms, watermarks, archives and leads are stored (Postgres: `LeadStore`).
public protocol LeadRepository: Sendable {
    func startRun(kind: RunKind, pipeline: String, host: String, processID: Int32, startedAt: Date, upperBound: Date) async throws -> Int64
    func finishRun(_ runID: Int64, status: RunStatus, counters: [String: Int], at: Date) async throws
    /// Runs still marked running on `host` (nil: on any host), with the process that started each.
    func runningRuns(host: String?) async throws -> [(id: Int64, processID: Int32?)]
    /// Marks a run whose process is gone (killed, crashed) as abandoned.
    func abandonRun(_ runID: Int64, at: Date) async throws
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

    /// The keyed hashes of the people erased from this instance (or from every instance):
    /// kept out of its archives and tables (`ErasureList`).
    func erasureHashes(instance: String) async throws -> Set<String>
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
    public var archiveID: Int64
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

    public init(runID: Int64, connectionID: Int64, instance: String, formID: String, window: LeadWindow, archiveID: Int64,
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

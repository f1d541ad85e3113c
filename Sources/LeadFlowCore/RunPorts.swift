import Foundation

/// Counts of one load, per form window or summed for a run.
public struct LoadCounts: Sendable, Equatable {
    public var inserted = 0
    public var updated = 0
    public var unchanged = 0
    public var rejected = 0
    /// Leads of erased people, kept out.
    public var erased = 0

    public init() {}

    public static func + (a: LoadCounts, b: LoadCounts) -> LoadCounts {
        var sum = a
        sum.inserted += b.inserted
        sum.updated += b.updated
        sum.unchanged += b.unchanged
        sum.rejected += b.rejected
        sum.erased += b.erased
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
    /// Removes an archive file (one superseded by an erasure, or one no row points at).
    func remove(_ relativePath: String) async throws
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
    /// Takes the connection for this process (a second run at once gets false and skips it).
    func tryLockConnection(_ connectionID: Int64) async throws -> Bool
    func unlockConnection(_ connectionID: Int64) async throws
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
    public var archiveID: Int64
    public var commit: WindowCommit
    public var claim: WorkClaim?
    public var at: Date
    /// The ready rows, one per line (nil: none).
    public var rows: URL?
    public var rowCount: Int
    public var rejections: [SpooledRejection]

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

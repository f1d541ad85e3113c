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

/// Writes the raw pages of one connection's run into one archive, durably, and verifies it.
public protocol RawArchiver: Sendable {
    /// - Parameters:
    ///   - members: archive member name → the spooled file holding it.
    ///   - manifest: the `manifest.json` bytes (written last, hashes of every other member).
    func archive(members: [(name: String, file: URL)], manifest: Data, relativePath: String) throws -> ArchivedRun
    /// Every member of an archive, in order (`manifest.json` included).
    func members(of relativePath: String) throws -> [(name: String, data: Data)]
    /// Removes an archive file (one superseded by an erasure).
    func remove(_ relativePath: String) throws
}

/// Where runs, forms, watermarks, archives and leads are stored (Postgres: `LeadStore`).
public protocol LeadRepository {
    func startRun(kind: String, pipeline: String, host: String, processID: Int32, startedAt: Date, upperBound: Date) throws -> Int64
    func finishRun(_ runID: Int64, status: String, counters: [String: Int], at: Date) throws
    /// Runs still marked running on `host` (nil: on any host), with the process that started each.
    func runningRuns(host: String?) throws -> [(id: Int64, processID: Int32?)]
    /// Marks a run whose process is gone (killed, crashed) as abandoned.
    func abandonRun(_ runID: Int64, at: Date) throws
    /// Takes the connection for this process (a second run at once gets false and skips it).
    func tryLockConnection(_ connectionID: Int64) throws -> Bool
    func unlockConnection(_ connectionID: Int64) throws
    func watermark(connectionID: Int64, formID: String) throws -> Date?
    func saveForms(_ forms: [GraphForm], connectionID: Int64, runID: Int64, at: Date) throws
    func saveArchive(_ archive: ArchivedRun, runID: Int64, connectionID: Int64, windowFrom: Date?, windowTo: Date, at: Date) throws -> Int64
    /// One transaction: the window's leads (upserted), its rejections, and what `commit` records.
    /// Under a claim, the transaction first checks the claim's fence (`LeaseLost` if another
    /// worker took the connection over) and holds it until the commit.
    /// `window` is the span the leads were read over (leads loaded before from around it may come again).
    func loadWindow(runID: Int64, connectionID: Int64, formID: String, window: LeadWindow, archiveID: Int64, commit: WindowCommit,
                    claim: WorkClaim?, at: Date,
                    leads produce: (_ emit: (IntegrateLead, String) throws -> Void, _ reject: (LeadRejection, String) -> Void) throws -> Void) throws -> LoadCounts

    /// The keyed hashes of erased people (`ErasureList`): kept out of archives and tables.
    func erasureHashes() throws -> Set<String>
    /// Closed void periods of the connection that no backfill has completed yet, oldest first.
    func voidPeriodsAwaitingBackfill(connectionID: Int64) throws -> [VoidPeriod]
    /// The forms whose backfill window of this void period has committed.
    func backfilledForms(voidPeriodID: Int64) throws -> Set<String>
    /// Every form's window committed: the period is recovered as far as Facebook still returns it.
    func markBackfilled(voidPeriodID: Int64, runID: Int64, at: Date) throws
}

/// What a committed window records besides its leads.
public enum WindowCommit {
    /// A scheduled window: the form's watermark moves forward to the newest lead the server
    /// gave (asked after the leads were produced), never backwards.
    case watermark(() -> Date?)
    /// A window of a void period's backfill: it is marked done, so a killed backfill resumes
    /// after it; the scheduled watermark is left alone.
    case backfill(voidPeriodID: Int64, window: LeadWindow)
    /// An ad hoc backfill (`--since/--until`): only the leads.
    case leadsOnly
}

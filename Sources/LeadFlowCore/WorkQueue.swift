import Foundation

/// Who a worker is and how it holds its claims (`leadflow run --worker-id --lease`).
public struct WorkerSettings: Sendable, Equatable {
    /// Unique among the workers sharing one Postgres (default: `ProcessIdentity.workerID`).
    public var workerID: String
    /// A claim not renewed for this long is taken over by another worker.
    public var lease: Duration
    /// Connections this process works on at once, each with its own Postgres session.
    public var connectionsAtOnce: Int
    /// How often a worker with nothing left to claim looks again while others still hold
    /// connections of the round (a dead worker's come free when its lease ends).
    public var pollInterval: Duration
    /// The processes this one can see (`ProcessIdentity.processSpace`: host, boot id, pid
    /// namespace), so workers among them tell a dead one without waiting for its lease.
    public var host: String
    public var processID: Int32
    /// A pass with no progress for this long stops renewing its leases: another worker
    /// takes the connection over, and this one can no longer commit to it.
    public var stalledAfter: Duration

    public init(workerID: String, lease: Duration = .seconds(120), connectionsAtOnce: Int = 4, pollInterval: Duration = .milliseconds(250),
                host: String = ProcessIdentity.current.processSpace, processID: Int32 = getpid(), stalledAfter: Duration? = nil) {
        self.workerID = workerID
        self.host = host
        self.processID = processID
        self.lease = lease
        self.connectionsAtOnce = connectionsAtOnce
        self.pollInterval = pollInterval
        self.stalledAfter = stalledAfter ?? lease * 3
    }

    public static func defaultWorkerID() -> String { ProcessIdentity.current.workerID }
}

/// One pass over every connection, shared by the workers that join it.
public struct WorkRound: Sendable, Equatable {
    public let id: Int64
    public let kind: String
    /// This worker opened it; otherwise it joined a round another worker had opened.
    public let openedHere: Bool
    /// How long the round had been open when this worker joined it (server clock).
    public let ageAtJoin: Duration

    public init(id: Int64, kind: String, openedHere: Bool, ageAtJoin: Duration) {
        self.id = id
        self.kind = kind
        self.openedHere = openedHere
        self.ageAtJoin = ageAtJoin
    }
}

/// A connection of a round, held by one worker until its lease ends. `fence` rises with
/// every claim of the item: a commit made under an older fence is refused.
public struct WorkClaim: Sendable, Equatable {
    public let roundID: Int64
    public let connectionID: Int64
    public let workerID: String
    public let fence: Int64
    public let lease: Duration

    public init(roundID: Int64, connectionID: Int64, workerID: String, fence: Int64, lease: Duration) {
        self.roundID = roundID
        self.connectionID = connectionID
        self.workerID = workerID
        self.fence = fence
        self.lease = lease
    }
}

/// The workers' coordinator (Postgres: `WorkQueueStore`). No worker talks to another:
/// each claims, renews and completes items here.
public protocol WorkQueue: Sendable {
    /// Joins the open round of this kind, or opens one holding every connection.
    func joinRound(kind: String, workerID: String) async throws -> WorkRound
    /// The next item nobody holds (pending, or whose lease ended), or nil.
    func claim(in round: WorkRound, worker: WorkerSettings) async throws -> WorkClaim?
    /// Ends at once the leases held by processes of `host` that `isAlive` says are gone.
    func expireClaimsOfDeadProcesses(on host: String, isAlive: @escaping @Sendable (Int32) -> Bool) async throws
    /// Marks the item done; false when the claim was taken over meanwhile. Closes the round
    /// when it was the last item.
    func complete(_ claim: WorkClaim, outcome: String) async throws -> Bool
    /// Gives an item back at once (this worker failed on it), for another worker to take.
    func release(_ claim: WorkClaim) async throws
    /// Items of the round not done yet (pending, or held by any worker).
    func openItems(in round: WorkRound) async throws -> Int
    /// Extends the claim's lease; false when it was taken over.
    func renew(_ claim: WorkClaim) async throws -> Bool
}

/// A window's commit was refused: this worker's lease on the connection ended and another
/// worker claimed it, so the other worker's pass is the one that counts.
public struct LeaseLost: LeadFlowError, Equatable {
    public let connectionID: Int64
    public init(connectionID: Int64) { self.connectionID = connectionID }
    public var code: String { "work.lease_lost" }
    public var disposition: Disposition { .retry }
    public var description: String {
        "the lease on connection \(connectionID) ended and another worker took it over; this worker's uncommitted window was rolled back"
    }
}

/// The usage Graph last reported for the app, shared by every worker (Postgres:
/// `graph_app_usage`), so all of them slow down before the app's quota is reached.
public protocol UsageBoard: Sendable {
    func publish(_ usage: GraphUsage) async throws
    /// The highest usage any worker reported recently (nil: none).
    func latest() async throws -> GraphUsage?
}

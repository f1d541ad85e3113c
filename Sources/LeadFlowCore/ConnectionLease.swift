import Foundation
import Synchronization

/// The right to process one connection, held for a lease that its holder renews while it
/// makes progress (Postgres: `connection_leases`). `fence` rises with every taking: a window
/// committed under an older fence is refused (`LeaseLost`), so a worker that froze, or hung
/// while alive, cannot write over the one that took the connection over. It replaces a
/// session advisory lock, which a frozen worker's open session kept for ever.
public struct ConnectionLease: Sendable, Equatable {
    public let connectionID: Int64
    public let holder: String
    public let fence: Int64
    public let lease: Duration

    public init(connectionID: Int64, holder: String, fence: Int64, lease: Duration) {
        self.connectionID = connectionID
        self.holder = holder
        self.fence = fence
        self.lease = lease
    }
}

/// When a pass last made progress (a page received, an archive written, a window
/// committed). The heartbeat renews leases only while this is recent: a worker alive but
/// stuck stops renewing, its lease ends, and another worker takes the connection over.
public final class PassLiveness: Sendable {
    /// The last progress, or the end of a wait the pass announced (a rate limit Graph
    /// imposed): until then, being quiet is no stall.
    private let last = Mutex(ContinuousClock.now)

    public init() {}

    /// The pass under way in this task and its children (`withValue` around a pass).
    @TaskLocal public static var current: PassLiveness?

    public func tick() { last.withLock { $0 = max($0, ContinuousClock.now) } }

    /// The pass is about to wait `duration` on purpose: alive until it ends.
    public func waiting(_ duration: Duration) { last.withLock { $0 = max($0, ContinuousClock.now + duration) } }

    public var idleFor: Duration { max(.zero, ContinuousClock.now - last.withLock { $0 }) }

    /// Records progress of the pass under way, if any.
    public static func tick() { current?.tick() }

    /// Records a deliberate wait of the pass under way, if any.
    public static func waiting(_ duration: Duration) { current?.waiting(duration) }
}

/// Who this process is among the workers sharing one Postgres. The host name alone is not
/// enough (containers often share one), nor host and pid (every container's first process
/// is pid 1): the kernel's boot id and the pid namespace tell processes that can see each
/// other apart from those that cannot, and a random part keeps two ids apart even so.
public struct ProcessIdentity: Sendable, Equatable {
    public let host: String
    /// `/proc/sys/kernel/random/boot_id`, shortened; "" where there is none.
    public let bootID: String
    /// The pid namespace's inode (`/proc/self/ns/pid`); "" where there is none.
    public let pidNamespace: String
    public let processID: Int32
    public let nonce: String

    public init(host: String, bootID: String, pidNamespace: String, processID: Int32, nonce: String) {
        self.host = host
        self.bootID = bootID
        self.pidNamespace = pidNamespace
        self.processID = processID
        self.nonce = nonce
    }

    public static let current: ProcessIdentity = {
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .filter { $0.isHexDigit }.prefix(12) ?? ""
        let namespace = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid"))?
            .filter(\.isNumber) ?? ""
        let nonce = (0..<6).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
        return ProcessIdentity(host: ProcessInfo.processInfo.hostName, bootID: String(boot), pidNamespace: namespace,
                               processID: getpid(), nonce: nonce)
    }()

    /// Processes that share this key can see each other's pids (`kill(pid, 0)` means something).
    public var processSpace: String { "\(host)/\(bootID)/\(pidNamespace)" }

    /// `host:pid:nonce`, readable in `status` and logs, unique per process.
    public var workerID: String { "\(host):\(processID):\(nonce)" }
}

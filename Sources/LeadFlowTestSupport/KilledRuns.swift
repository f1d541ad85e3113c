import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// How far a connection pass got, read from the progress lines a `run` or `backfill`
/// prints on stderr (`ConnectionPass`): reading forms, archiving pages, loading windows.
/// Several connections may run at once; the furthest any reached counts.
public enum PassStage: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    /// No pass had begun reading.
    case starting
    case extract
    case archive
    /// COPY and commit: one progress line covers both.
    case load

    public static func < (a: PassStage, b: PassStage) -> Bool { a.rawValue < b.rawValue }

    public var description: String { ["starting", "extract", "archive", "load"][rawValue] }

    public static func reached(in stderr: String) -> PassStage {
        var furthest = PassStage.starting
        for line in stderr.split(separator: "\n") {
            let stage: PassStage? = line.contains(": reading ") && line.contains(" form") ? .extract
                : line.contains(": archiving ") ? .archive
                : line.contains(": loading") ? .load : nil
            if let stage, stage > furthest { furthest = stage }
        }
        return furthest
    }

    /// The stage a debug kill point lies in (`DebugKill`).
    public static func of(killPoint point: String) -> PassStage {
        switch point {
        case DebugKill.extract: .extract
        case DebugKill.archive: .archive
        case DebugKill.copy, DebugKill.commit, DebugKill.committed: .load
        default: preconditionFailure("no such kill point: \(point)")
        }
    }
}

/// What a command killed by SIGKILL looks like from outside.
public enum Killed {
    public static let status = 128 + SIGKILL

    /// SIGKILL, after the line `DebugKill.point` writes just before the signal: the kill was
    /// the one asked for. (Not necessarily the last line: another connection's thread may
    /// log in between.)
    public static func byPoint(_ point: String, _ result: ProcessResult) -> Bool {
        result.status == status && result.stderr.contains("leadflow: debug kill at \(point)\n")
    }
}

extension Killed {
    /// Ends the connection leases a killed run left, as waiting out `workers.lease_seconds`
    /// would. A SIGKILLed holder never releases its lease, and the next run waits for it to
    /// lapse (120 s by default) before its pass begins: without this, the next kill lands in
    /// that wait instead of in a stage.
    public static func lapseConnectionLeases(_ databaseURL: String) throws {
        _ = try PostgresConnection(conninfo: databaseURL).query("""
            UPDATE connection_leases SET lease_until = clock_timestamp() - interval '1 millisecond' WHERE lease_until >= clock_timestamp()
            """, label: "lapse connection leases")
    }
}

import Foundation

/// Named instants a test can SIGKILL the process at (`LEADFLOW_DEBUG_KILL_AT=<name>`), to
/// leave exactly what a crash there leaves and to show that a kill landed in the stage it
/// names. Each point says its name on stderr first, so the test can tell the kill it asked
/// for from any other death. Debug builds only: a release binary has no such switch.
public enum DebugKill {
    /// Read once: the points sit in loops (each window's COPY), and the environment does not change.
    static let target: String? = {
        #if DEBUG
        ProcessInfo.processInfo.environment["LEADFLOW_DEBUG_KILL_AT"]
        #else
        nil
        #endif
    }()

    /// The stage markers, in the order a run reaches them.
    public static let extract = "extract.page-spooled"
    public static let archive = "archive.written"
    public static let copy = "copy.rows-sent"
    public static let commit = "commit.pending"
    /// After a window's commit: some of the run's windows are in, the rest are not.
    public static let committed = "commit.done"

    public static func point(_ name: String) {
        guard let target, target == name else { return }
        FileHandle.standardError.write(Data("leadflow: debug kill at \(name)\n".utf8))
        kill(getpid(), SIGKILL)
    }
}

import Foundation
import LeadFlowCore
import Logging

/// Runs of this host whose process is gone (killed, crashed) are marked abandoned, and the
/// spool folders of runs that are not running are removed. Nothing committed depends on a
/// spool: the next window re-reads whatever an abandoned run had not committed.
struct RunSweeper {
    let leads: any LeadRepository
    let spoolRoot: URL
    let host: String
    let logger: Logger

    func sweep(now: Date) async throws {
        var alive: Set<Int64> = []
        for run in try await leads.runningRuns(host: host) {
            guard let pid = run.processID, !processExists(pid) else {
                alive.insert(run.id)
                continue
            }
            try await leads.abandonRun(run.id, at: now)
            logger.notice("marked an interrupted run abandoned", metadata: ["run.id": "\(run.id)"])
        }
        // Spool folders of runs that are not running any more, on any host (LEADFLOW_HOME may
        // be a volume that workers on several hosts share). Listed before the runs are asked
        // again: a worker starting meanwhile writes its run row before its folder, so a
        // folder seen here whose run is running is always in the answer.
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: spoolRoot.path)) ?? []
        alive.formUnion(try await leads.runningRuns(host: nil).map(\.id))
        for name in folders {
            guard name.hasPrefix("run-"), let id = Int64(name.dropFirst(4)), !alive.contains(id) else { continue }
            try? FileManager.default.removeItem(at: spoolRoot.appendingPathComponent(name))
        }
    }
}

/// A process of this host that exists (kill 0 succeeds, or is refused for lack of
/// permission): a run or a claim whose process is gone was left by a crash.
func processExists(_ processID: Int32) -> Bool {
    kill(processID, 0) == 0 || errno != ESRCH
}

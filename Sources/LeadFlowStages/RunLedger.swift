import Foundation
import LeadFlowCore
import Synchronization

/// A run row, started when first needed (by whichever lane needs it first) and finished
/// with the counters of its passes.
final class RunLedger: Sendable {
    let kind: RunKind
    let pipeline: String
    let host: String
    let now: Date
    private let started = Mutex<Int64?>(nil)

    init(kind: RunKind, pipeline: String, host: String, now: Date) {
        self.kind = kind
        self.pipeline = pipeline
        self.host = host
        self.now = now
    }

    var startedID: Int64? { started.withLock { $0 } }

    func id(_ leads: any LeadRepository) throws -> Int64 {
        try started.withLock { started in
            if let started { return started }
            let id = try leads.startRun(kind: kind, pipeline: pipeline, host: host, processID: getpid(), startedAt: now, upperBound: now)
            started = id
            return id
        }
    }

    /// The run's end: its spool folder gone, its counters and status recorded.
    func finish(_ passes: [RunStage.ConnectionSummary], leads: any LeadRepository, spoolRoot: URL) throws {
        guard let startedID else { return }
        try? FileManager.default.removeItem(at: spoolRoot.appendingPathComponent("run-\(startedID)"))
        let total = passes.reduce(LoadCounts()) { $0 + $1.counts }
        try leads.finishRun(startedID, status: passes.allSatisfy(\.isClean) ? .succeeded : .partial,
                            counters: RunStage.counters(total), at: now)
    }

    func fail(_ leads: any LeadRepository) {
        guard let startedID else { return }
        try? leads.finishRun(startedID, status: .failed, counters: [:], at: now)
    }
}

import Foundation
import LeadFlowCore

/// A run row, started when first needed (by whichever lane needs it first: an actor, so
/// two lanes never start two rows) and finished with the counters of its passes.
actor RunLedger {
    let kind: RunKind
    let pipeline: String
    let host: String
    let now: Date
    /// The row's start, shared by every lane that asks while it is being written.
    private var starting: Task<Int64, any Error>?
    private(set) var startedID: Int64?

    init(kind: RunKind, pipeline: String, host: String, now: Date) {
        self.kind = kind
        self.pipeline = pipeline
        self.host = host
        self.now = now
    }

    func id(_ leads: any LeadRepository) async throws -> Int64 {
        if let startedID { return startedID }
        if starting == nil {
            let (kind, pipeline, host, now) = (kind, pipeline, host, now)
            starting = Task {
                try await leads.startRun(kind: kind, pipeline: pipeline, host: host, processID: getpid(), startedAt: now, upperBound: now)
            }
        }
        let id = try await starting!.value
        startedID = id
        return id
    }

    /// The run's end: its spool folder gone, its counters, status and passes recorded.
    func finish(_ passes: [RunStage.ConnectionSummary], leads: any LeadRepository, spoolRoot: URL) async throws {
        guard let startedID else { return }
        try? FileManager.default.removeItem(at: spoolRoot.appendingPathComponent("run-\(startedID)"))
        let total = passes.reduce(LoadCounts()) { $0 + $1.counts }
        try await leads.finishRun(startedID, status: passes.allSatisfy(\.isClean) ? .succeeded : .partial,
                                  counters: RunStage.counters(total), passes: passes.compactMap(\.record), at: now)
    }

    func fail(_ leads: any LeadRepository) async {
        guard let startedID else { return }
        try? await leads.finishRun(startedID, status: .failed, counters: [:], at: now)
    }
}

import Foundation
import LeadFlowCore

/// A run row, started when first needed (by whichever lane needs it first: an actor, so
/// two lanes never start two rows) and finished with the counters of its passes. While it
/// lives its lease is renewed every third of the lease: a run whose lease ended is dead to
/// every host (`RunSweeper`).
actor RunLedger {
    let kind: RunKind
    let pipeline: String
    let host: String
    let now: Date
    let lease: Duration
    /// Renews the lease, on a session of its own when it has one: the run's own session may
    /// be busy in a long COPY.
    let keeper: any LeadRepository
    /// The row's start, shared by every lane that asks while it is being written.
    private var starting: Task<Int64, any Error>?
    private(set) var startedID: Int64?
    private var heartbeat: Task<Void, Never>?

    init(kind: RunKind, pipeline: String, host: String, now: Date, lease: Duration, keeper: any LeadRepository) {
        self.kind = kind
        self.pipeline = pipeline
        self.host = host
        self.now = now
        self.lease = lease
        self.keeper = keeper
    }

    func id(_ leads: any LeadRepository) async throws -> Int64 {
        if let startedID { return startedID }
        if starting == nil {
            let (kind, pipeline, host, now, lease) = (kind, pipeline, host, now, lease)
            starting = Task {
                try await leads.startRun(kind: kind, pipeline: pipeline, host: host, processID: getpid(), startedAt: now, upperBound: now,
                                         lease: lease)
            }
        }
        let id = try await starting!.value
        if startedID == nil {
            startedID = id
            let (keeper, lease) = (keeper, lease)
            heartbeat = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: lease / 3)
                    guard !Task.isCancelled else { break }
                    try? await keeper.renewRunLease(id, lease: lease)
                }
            }
        }
        return id
    }

    /// The run's end: its spool folder gone, its counters, status and passes recorded.
    func finish(_ passes: [RunStage.ConnectionSummary], leads: any LeadRepository, spoolRoot: URL) async throws {
        heartbeat?.cancel()
        guard let startedID else { return }
        try? FileManager.default.removeItem(at: spoolRoot.appendingPathComponent("run-\(startedID)"))
        let total = passes.reduce(LoadCounts()) { $0 + $1.counts }
        try await leads.finishRun(startedID, status: passes.allSatisfy(\.isClean) ? .succeeded : .partial,
                                  counters: RunStage.counters(total), passes: passes.compactMap(\.record), at: now)
    }

    func fail(_ leads: any LeadRepository) async {
        heartbeat?.cancel()
        guard let startedID else { return }
        try? await leads.finishRun(startedID, status: .failed, counters: [:], at: now)
    }
}

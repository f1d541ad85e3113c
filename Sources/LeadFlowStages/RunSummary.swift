import Foundation
import LeadFlowCore

/// What one connection's pass reads.
public enum Job: Sendable, Equatable, CustomStringConvertible {
    /// Every form from its watermark − overlap to now; the watermark moves.
    case scheduled
    /// Every form over the void period widened by the overlap, except the forms whose
    /// window already committed; the period is marked backfilled when all have.
    case voidPeriod(VoidPeriod)
    /// Every form over a given window (`backfill --since/--until`).
    case window(LeadWindow)

    public var description: String { kind.description }

    public var kind: PassKind {
        switch self {
        case .scheduled: return .scheduled
        case .voidPeriod(let period): return .voidPeriod(period.id)
        case .window: return .window
        }
    }
}

/// What a pass's commits are checked against: the work item's claim (crew runs) and the
/// connection's lease (every pass). A commit under a fence since raised is refused.
public struct PassFences: Sendable {
    public let claim: WorkClaim?
    public let lease: ConnectionLease?

    public init(claim: WorkClaim?, lease: ConnectionLease?) {
        self.claim = claim
        self.lease = lease
    }
}

/// What a connection summary is about: its preflight only, or a pass of a job.
public enum PassKind: Sendable, Equatable, CustomStringConvertible {
    case preflight
    case scheduled
    case voidPeriod(Int64)
    case window
    /// A backfill that found nothing to read.
    case backfill

    public var isBackfill: Bool {
        switch self {
        case .voidPeriod, .window, .backfill: return true
        case .preflight, .scheduled: return false
        }
    }

    public var description: String {
        switch self {
        case .preflight: return "preflight"
        case .scheduled: return "scheduled"
        case .voidPeriod(let id): return "backfill of void period \(id)"
        case .window: return "backfill window"
        case .backfill: return "backfill"
        }
    }
}

extension RunStage {
    public struct ConnectionSummary: Sendable, Equatable {
        public enum State: Sendable, Equatable {
            case loaded
            case void(VoidCause)
            /// Not processed this run: Graph could not be asked.
            case skipped(String)
            /// Some forms failed; the others loaded.
            case partial([String])
            /// Nothing to do here: another run (another worker) is processing it, or a
            /// backfill found no void period awaiting one. Not a failure.
            case idle(String)

            public var isVoid: Bool { if case .void = self { return true } else { return false } }
        }
        public let label: String
        public let job: PassKind
        public let state: State
        public let counts: LoadCounts
        public let pages: Int
        /// The connection's id and instance (nil only in summaries made without a record).
        public var connectionID: Int64?
        public var instance: String?
        /// Each form the pass read: its window, pages, requests, counts, or why it failed.
        public var forms: [FormSummary] = []
        /// What was asked of Graph for this pass (and the connection's preflight, counted
        /// with its first pass of the run).
        public var graph = GraphTally.Counts()
        /// Where this pass's time went (the preflight's with the connection's first pass).
        public var timings = Timings()
        /// The archive the pass wrote; nil when it read nothing new.
        public var archive: ArchiveSummary?

        public init(label: String, job: PassKind, state: State, counts: LoadCounts = LoadCounts(), pages: Int = 0) {
            self.label = label
            self.job = job
            self.state = state
            self.counts = counts
            self.pages = pages
        }

        /// The state's one-word name, and what it says beyond that (cause, reason, forms).
        public var stateName: String {
            switch state {
            case .loaded: return "loaded"
            case .void: return "void"
            case .skipped: return "skipped"
            case .partial: return "partial"
            case .idle: return "idle"
            }
        }

        public var stateDetail: String? {
            switch state {
            case .loaded: return nil
            case .void(let cause): return cause.rawValue
            case .skipped(let reason), .idle(let reason): return reason
            case .partial(let forms): return "forms \(forms.joined(separator: ", ")) failed"
            }
        }

        /// Whether something failed in this pass (exit 1 material).
        public var failed: Bool {
            switch state {
            case .skipped, .partial: return true
            case .loaded, .void, .idle: return false
            }
        }

        /// Whether this pass leaves nothing for anyone to do.
        var isClean: Bool {
            switch state {
            case .loaded, .idle: return true
            case .void, .skipped, .partial: return false
            }
        }
    }

    /// One form of a pass.
    public struct FormSummary: Sendable, Equatable {
        public let formID: String
        public var window: LeadWindow?
        public var pages = 0
        /// Leads Graph gave (rejected ones included; erased people left out).
        public var leads = 0
        public var graph = GraphTally.Counts()
        public var counts = LoadCounts()
        public var failure: FormFailure?

        public init(formID: String) {
            self.formID = formID
        }
    }

    /// An archive a pass wrote.
    public struct ArchiveSummary: Sendable, Equatable {
        public let id: Int64
        public let path: String
        public let bytes: Int64
    }

    /// Seconds spent in each stage, summed over connections.
    public typealias Timings = StageSeconds

    public struct Summary: Sendable, Equatable {
        /// The scheduled run, or the backfill run for `leadflow backfill`.
        public let runID: Int64
        /// `scheduled` or `backfill`: what `runID` is.
        public var kind: RunKind = .scheduled
        /// The backfill run a scheduled run started for reauthenticated connections.
        public let backfillRunID: Int64?
        public let connections: [ConnectionSummary]
        public let timings: Timings

        /// Exit 2 material: a void connection or a rejected lead.
        public var hasGaps: Bool {
            connections.contains { if case .void = $0.state { return true } else { return $0.counts.rejected > 0 } }
        }

        /// Exit 1 material: a connection skipped or only partly read.
        public var hasFailures: Bool { connections.contains(where: \.failed) }

        /// Every pass's Graph requests and errors.
        public var graph: GraphTally.Counts { connections.reduce(GraphTally.Counts()) { $0 + $1.graph } }

        /// Every pass's counts.
        public var counts: LoadCounts { connections.reduce(LoadCounts()) { $0 + $1.counts } }
    }

    public struct UnknownConnection: LeadFlowError {
        public let labels: [String]
        public var code: String { "unknown_connection" }
        public var disposition: Disposition { .fatal }
        public var description: String { "no connection is labelled \(labels.joined(separator: ", ")) (see leadflow status)" }
    }

    static func counters(_ counts: LoadCounts) -> [String: Int] {
        ["inserted": counts.inserted, "updated": counts.updated, "unchanged": counts.unchanged, "rejected": counts.rejected, "erased": counts.erased,
         "late": counts.late, "missing": counts.missing]
    }
}

extension RunStage.ConnectionSummary {
    /// The pass as the run tables keep it; nil for a summary made without a connection record.
    var record: RunPassRecord? {
        guard let connectionID, let instance else { return nil }
        let kind: String
        var voidPeriodID: Int64?
        switch job {
        case .preflight: kind = "preflight"
        case .scheduled: kind = "scheduled"
        case .voidPeriod(let id):
            kind = "void_period"
            voidPeriodID = id
        case .window: kind = "window"
        case .backfill: kind = "backfill"
        }
        return RunPassRecord(
            job: kind, voidPeriodID: voidPeriodID, connectionID: connectionID, instance: instance, state: stateName, detail: stateDetail,
            pages: pages, counts: counts, graph: graph, seconds: timings, archiveID: archive?.id, archiveBytes: archive?.bytes,
            forms: forms.map {
                RunFormRecord(formID: $0.formID, window: $0.window, pages: $0.pages, leads: $0.leads, counts: $0.counts, graph: $0.graph,
                              errorCode: $0.failure?.code, error: $0.failure?.description)
            })
    }
}

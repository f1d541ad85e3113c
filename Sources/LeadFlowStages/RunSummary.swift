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

        public init(label: String, job: PassKind, state: State, counts: LoadCounts = LoadCounts(), pages: Int = 0) {
            self.label = label
            self.job = job
            self.state = state
            self.counts = counts
            self.pages = pages
        }

        /// Whether this pass leaves nothing for anyone to do.
        var isClean: Bool {
            switch state {
            case .loaded, .idle: return true
            case .void, .skipped, .partial: return false
            }
        }
    }

    /// Seconds spent in each stage, summed over connections.
    public struct Timings: Sendable, Equatable {
        public var preflight: Double = 0
        public var extract: Double = 0
        public var archive: Double = 0
        public var load: Double = 0

        static func + (a: Timings, b: Timings) -> Timings {
            Timings(preflight: a.preflight + b.preflight, extract: a.extract + b.extract, archive: a.archive + b.archive,
                    load: a.load + b.load)
        }
    }

    public struct Summary: Sendable, Equatable {
        /// The scheduled run, or the backfill run for `leadflow backfill`.
        public let runID: Int64
        /// The backfill run a scheduled run started for reauthenticated connections.
        public let backfillRunID: Int64?
        public let connections: [ConnectionSummary]
        public let timings: Timings

        /// Exit 2 material: a void connection or a rejected lead.
        public var hasGaps: Bool {
            connections.contains { if case .void = $0.state { return true } else { return $0.counts.rejected > 0 } }
        }

        /// Exit 1 material: a connection skipped or only partly read.
        public var hasFailures: Bool {
            connections.contains {
                switch $0.state {
                case .skipped, .partial: return true
                case .loaded, .void, .idle: return false
                }
            }
        }
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

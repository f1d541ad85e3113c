import Foundation

/// A pipeline definition (`pipelines/*.yml`): how to read Graph, how to window, the token
/// policy, where archives go, and how forms and questions map onto Integrate.
public struct Pipeline: Sendable, Equatable {
    public struct Graph: Sendable, Equatable {
        public var baseURL = "https://graph.facebook.com"
        public var apiVersion = "v25.0"
        public var pageSize = 100
        /// Requests in flight for the whole process (all connections).
        public var concurrency = 16
        /// Requests in flight for one Page (its forms read at once).
        public var pageConcurrency = 4
        public var timeoutSeconds = 60
        /// The longest all of a run's rate-limit waits may take together: past it, a
        /// connection Graph throttles is skipped with a reason and read next run.
        public var maxRateLimitWaitSeconds = 900
    }

    public struct Window: Sendable, Equatable {
        /// Each run re-reads this much before the watermark (late-indexed leads, clock skew).
        public var overlapMinutes = 10
        /// The first run's lower bound; nil reads every lead Facebook still returns.
        public var start: Date?
    }

    /// How a worker shares the connections with others on the same Postgres.
    public struct Workers: Sendable, Equatable {
        /// Connections this process works on at once (one Postgres session each).
        /// 8: a run that finds nothing new over 1,000 Pages at 50 ms takes 17.8 s with 8,
        /// 29.0 s with 4 (`scripts/bench-run.sh`); each is one Postgres session.
        public var connectionsAtOnce = 8
        /// A claim not renewed for this long is taken over by another worker.
        public var leaseSeconds = 120
        /// A connection's pass is stopped after this long (its connection skipped, exit 1):
        /// a hung pass never holds a connection, or the scheduler's next run, for ever.
        public var passTimeLimitMinutes = 60
        /// Any one SQL statement of a run is cancelled by Postgres after this long.
        public var statementTimeoutSeconds = 600
    }

    public struct Archive: Sendable, Equatable {
        /// Relative to LEADFLOW_HOME unless absolute.
        public var folder = "archives"
        public var compression = "zstd"
    }

    /// Which Integrate source a form feeds: the first rule that matches wins.
    public struct SourceRule: Sendable, Equatable {
        public enum Match: Sendable, Equatable {
            case formID(String)
            /// A pattern with `*` as a wildcard, matched against the form's name.
            case formName(String)
            case pageID(String)
        }
        public var match: Match
        public var source: String

        public init(match: Match, source: String) {
            self.match = match
            self.source = source
        }
    }

    public var name: String
    public var graph = Graph()
    public var workers = Workers()
    public var window = Window()
    public var validityDays = 90
    public var reminderDay = 75
    public var requiredPermissions = PreflightRules.defaultRequiredPermissions
    public var archive = Archive()
    /// Backfill a freshly reauthenticated connection during `run`.
    public var automaticBackfill = true
    public var sources: [SourceRule] = []
    public var defaultSource: String?
    /// Question key → schema field, on top of `LeadSchema.defaultFieldKeys`.
    public var fieldMapping: [String: LeadField] = [:]
    /// Where notifications go (webhook, SMTP, each instance's CSM); the environment overrides.
    public var notifications = NotificationConfiguration()

    public init(name: String) {
        self.name = name
    }

    public var tokenPolicy: TokenPolicy { TokenPolicy(validityDays: validityDays, reminderDay: reminderDay) }

    /// The Integrate source for a form, or nil when no rule and no default apply.
    public func source(formID: String, formName: String, pageID: String) -> String? {
        for rule in sources {
            switch rule.match {
            case .formID(let id) where id == formID: return rule.source
            case .formName(let pattern) where Self.matches(formName, pattern: pattern): return rule.source
            case .pageID(let id) where id == pageID: return rule.source
            default: continue
            }
        }
        return defaultSource
    }

    /// `*` matches any run of characters; everything else literally, case-insensitively.
    static func matches(_ text: String, pattern: String) -> Bool {
        let parts = pattern.lowercased().split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        var rest = Substring(text.lowercased())
        for (index, part) in parts.enumerated() {
            if index == 0 {
                guard rest.hasPrefix(part) else { return false }
                rest = rest.dropFirst(part.count)
            } else if index == parts.count - 1 {
                return part.isEmpty || rest.hasSuffix(part)
            } else if let range = rest.range(of: part) {
                rest = rest[range.upperBound...]
            } else {
                return false
            }
        }
        return rest.isEmpty
    }
}

/// The schema fields a question can feed (Integrate lead schema v1).
public enum LeadField: String, Sendable, CaseIterable, Equatable {
    case email, fullName = "full_name", firstName = "first_name", lastName = "last_name", company, jobTitle = "job_title"
    case phone, country, state, city, postalCode = "postal_code"
    /// Kept under its own key in `answers`.
    case answers
    /// Dropped.
    case ignore
}

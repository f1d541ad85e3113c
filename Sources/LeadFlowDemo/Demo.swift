import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowGraph
import LeadFlowGraphFake
import LeadFlowHTTP
import LeadFlowPostgres
import LeadFlowStages
import LeadFlowStore
import Logging

/// What the demo does on the Graph fake's side of the story: when each Page is
/// (re)authenticated with which token, how many days to walk, how often to run. It sits
/// under `demo` in the scenario file, beside what the fake plays.
public struct DemoPlan: Decodable, Sendable {
    public struct Authentication: Decodable, Sendable {
        public let day: Double
        public let label: String
        public let instance: String
        public let pageID: String
        public let token: String

        enum CodingKeys: String, CodingKey {
            case day, label, instance, token, pageID = "page_id"
        }
    }

    public let start: Date
    public let days: Double
    public var runEveryHours: Double
    public let firstRunAfterHours: Double
    public let authentications: [Authentication]

    enum CodingKeys: String, CodingKey {
        case start, days, authentications
        case runEveryHours = "run_every_hours", firstRunAfterHours = "first_run_after_hours"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard let start = UTCTime.parse(try c.decode(String.self, forKey: .start)) else {
            throw DecodingError.dataCorruptedError(forKey: .start, in: c, debugDescription: "not an ISO 8601 instant")
        }
        self.start = start
        days = try c.decode(Double.self, forKey: .days)
        runEveryHours = try c.decodeIfPresent(Double.self, forKey: .runEveryHours) ?? 24
        firstRunAfterHours = try c.decodeIfPresent(Double.self, forKey: .firstRunAfterHours) ?? 0
        authentications = try c.decode([Authentication].self, forKey: .authentications).sorted { $0.day < $1.day }
    }

    /// The scenario file: the fake's part and the demo's part.
    public static func load(_ url: URL) throws -> (GraphScenario, DemoPlan) {
        try decode(try Data(contentsOf: url))
    }

    /// The scenario `leadflow demo` plays by default (fixtures/scenarios/demo.json, compiled
    /// into the binary by SwiftPM's embedInCode: an installed binary has no source tree).
    public static func builtIn() throws -> (GraphScenario, DemoPlan) {
        try decode(Data(PackageResources.demo_json))
    }

    static func decode(_ data: Data) throws -> (GraphScenario, DemoPlan) {
        struct File: Decodable { let demo: DemoPlan }
        return (try JSONDecoder().decode(GraphScenario.self, from: data), try JSONDecoder().decode(File.self, from: data).demo)
    }

    /// Where the built-in scenario comes from, for the demo's first line.
    public static let builtInName = "the built-in scenario (fixtures/scenarios/demo.json)"
}

/// `leadflow demo`: walks the injected clock through the plan's days on the Graph fake,
/// with the real stages, Postgres and archives: scheduled runs, reminders, void periods,
/// reauthentications and the backfills that follow them.
public struct DemoRunner {
    let scenario: GraphScenario
    let plan: DemoPlan
    let database: PostgresSession
    let home: URL

    public init(scenario: GraphScenario, plan: DemoPlan, database: PostgresSession, home: URL) {
        self.scenario = scenario
        self.plan = plan
        self.database = database
        self.home = home
    }

    public struct Outcome: Sendable {
        public let now: Date
        public let runs: Int
        public let leadsLoaded: Int
        public let graphRequests: Int
        public let pipeline: Pipeline
    }

    /// - Parameter say: one line of the story at a time.
    public func run(say: (String) -> Void) async throws -> Outcome {
        let quiet = Logger(label: "leadflow.demo", factory: { _ in SwiftLogNoOpLogHandler() })
        let fake = try GraphFake(scenario: scenario, now: plan.start)
        defer { fake.stop() }
        let vault = try TokenVault.openOrCreate(keyFile: home.appendingPathComponent("token.key"))
        let erasureKey = try ErasureKey.openOrCreate(keyFile: home.appendingPathComponent("erasure.key"))
        let graph = GraphClient(transport: try CurlHTTPClient(logger: quiet),
                                configuration: .init(baseURL: fake.baseURL, apiVersion: scenario.apiVersion, appSecret: scenario.appSecret),
                                logger: quiet, sleeper: TaskSleeper())
        let settings = ValidationSettings(appID: scenario.appID, appSecret: scenario.appSecret)
        var pipeline = Pipeline(name: "demo")
        pipeline.defaultSource = "facebook-lead-ads"
        let connections = ConnectionStore(database)
        let connector = Connector(graph: graph, repository: connections, sealer: vault, settings: settings, logger: quiet)
        let stage = RunStage(graph: graph, connections: connections, leads: LeadStore(database),
                             archiver: TarArchiver(home: home, folder: pipeline.archive.folder, compression: .zstd), sealer: vault,
                             erasure: erasureKey, pipeline: pipeline,
                             settings: settings, spoolRoot: home.appendingPathComponent("spool"), host: "demo", logger: quiet)

        func dayLabel(_ date: Date) -> String {
            let day = Int((date.timeIntervalSince(plan.start) / 86_400).rounded(.down))
            return "day \(String(repeating: " ", count: max(0, 3 - String(day).count)))\(day)  \(UTCTime.iso8601(date).prefix(10))"
        }
        var pending = plan.authentications[...]
        let end = plan.start.addingTimeInterval(plan.days * 86_400)
        var now = plan.start.addingTimeInterval(plan.firstRunAfterHours * 3_600)
        var runs = 0
        var leadsSinceLastLine = 0
        var lastLine = plan.start
        var remindersSeen = 0
        var voidNow: Set<String> = []
        say("The Graph fake plays \(scenario.pages.count) Pages with \(scenario.pages.flatMap(\.forms).count) forms; "
            + "a run every \(Int(plan.runEveryHours)) h for \(Int(plan.days)) days.")
        while now <= end {
            // The (re)authentications due before this run, at their own instants.
            while let next = pending.first, plan.start.addingTimeInterval(next.day * 86_400) <= now {
                pending.removeFirst()
                let at = plan.start.addingTimeInterval(next.day * 86_400)
                fake.now = at
                let result = try await connector.connect(.init(instance: next.instance, pageID: next.pageID, label: next.label,
                                                               token: AccessToken(next.token)), now: at)
                let what: String
                if let closed = result.saved.closedVoidPeriod {
                    what = "reauthenticated; void period \(closed.id) (\(closed.cause.rawValue)) closed, its leads are due for backfill"
                } else {
                    what = result.saved.reauthenticated ? "reauthenticated before its token ran out" : "connected"
                }
                say("\(dayLabel(at))  \(next.label): \(what) (by \(result.authenticatorName ?? "user \(result.authenticatorUserID)"))")
                voidNow.remove(next.label)
            }
            fake.now = now
            let summary = try await stage.run(now: now)
            runs += 1
            for connection in summary.connections {
                leadsSinceLastLine += connection.counts.inserted
                switch connection.state {
                case .void(let cause) where !voidNow.contains(connection.label):
                    voidNow.insert(connection.label)
                    say("\(dayLabel(now))  \(connection.label): VOID (\(cause.rawValue)); leads keep arriving in Facebook, not in Integrate")
                case .loaded where connection.job.isBackfill:
                    say("\(dayLabel(now))  \(connection.label): \(connection.job): \(connection.counts.inserted) leads recovered")
                case .skipped(let reason):
                    say("\(dayLabel(now))  \(connection.label): skipped: \(reason)")
                case .partial(let forms):
                    say("\(dayLabel(now))  \(connection.label): forms \(forms.joined(separator: ", ")) failed; the next run retries them")
                default:
                    break
                }
            }
            let reminders = try await connections.reminders()
            for reminder in reminders.dropFirst(remindersSeen) {
                say("\(dayLabel(now))  \(reminder.connectionLabel): reminder (\(reminder.kind.replacingOccurrences(of: "_", with: " "))): "
                    + "its authentication ends \(UTCTime.iso8601(reminder.expiresAt).prefix(10))")
            }
            remindersSeen = reminders.count
            if now.timeIntervalSince(lastLine) >= 30 * 86_400 {
                say("\(dayLabel(now))  \(runs) runs so far; \(leadsSinceLastLine) new leads loaded in the last 30 days")
                leadsSinceLastLine = 0
                lastLine = now
            }
            now = now.addingTimeInterval(plan.runEveryHours * 3_600)
        }
        let loaded = try await database.run { try $0.query("SELECT count(*) FROM leads", label: "count leads")[0].int(0) ?? 0 }
        return Outcome(now: now.addingTimeInterval(-plan.runEveryHours * 3_600), runs: runs, leadsLoaded: loaded,
                       graphRequests: fake.requestLog.count, pipeline: pipeline)
    }
}

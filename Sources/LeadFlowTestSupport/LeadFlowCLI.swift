import Foundation
import LeadFlowCore

/// The built `leadflow`, run as a subprocess against one test's database, home and Graph
/// fake. `cli(["run"])` runs at the suite's fixed instant and leaves the fake's clock alone;
/// `cli(["run"], at:)` and `cli(["run"], day:)` move the fake's clock there first, because the
/// run (through `LEADFLOW_NOW`) and the fake must agree on what time it is.
public struct LeadFlowCLI: Sendable {
    public let databaseURL: String
    public let home: URL
    public let fake: GraphFake
    /// The instant of commands given none (`LEADFLOW_NOW`); nil runs on the real clock.
    public let now: Date?
    /// The calendar behind `day:`.
    public let days: TestDays?
    /// Added as `--pipeline <file>` after every command's own arguments.
    public let pipeline: URL?
    /// Added to every command's environment.
    public let extraEnvironment: [String: String]

    public init(databaseURL: String, home: URL, fake: GraphFake, now: Date? = nil, days: TestDays? = nil, pipeline: URL? = nil,
                environment: [String: String] = [:]) {
        self.databaseURL = databaseURL
        self.home = home
        self.fake = fake
        self.now = now
        self.days = days
        self.pipeline = pipeline
        self.extraEnvironment = environment
    }

    /// What a command at `instant` (default: `now`) runs with.
    public func environment(at instant: Date? = nil, extra: [String: String] = [:]) -> [String: String] {
        LeadFlowBinary.environment(databaseURL: databaseURL, home: home, graphURL: fake.baseURL, now: instant ?? now)
            .merging(extraEnvironment) { $1 }
            .merging(extra) { $1 }
    }

    /// The arguments as run: the command's own, then the pipeline file (`pipeline` overrides the suite's).
    public func arguments(_ arguments: [String], pipeline file: URL? = nil) -> [String] {
        (file ?? pipeline).map { arguments + ["--pipeline", $0.path] } ?? arguments
    }

    /// Runs at `now`; the fake's clock is left where it is.
    public func callAsFunction(_ arguments: [String], input: String? = nil, extra: [String: String] = [:],
                               pipeline file: URL? = nil) async throws -> ProcessResult {
        try await LeadFlowBinary.run(self.arguments(arguments, pipeline: file), environment: environment(extra: extra), input: input)
    }

    /// Runs at `instant`, the fake's clock moved there first.
    public func callAsFunction(_ arguments: [String], at instant: Date, input: String? = nil, extra: [String: String] = [:],
                               pipeline file: URL? = nil) async throws -> ProcessResult {
        fake.now = instant
        return try await LeadFlowBinary.run(self.arguments(arguments, pipeline: file), environment: environment(at: instant, extra: extra),
                                            input: input)
    }

    /// Runs on day `n` of `days`, the fake's clock moved there first.
    public func callAsFunction(_ arguments: [String], day n: Double, input: String? = nil, extra: [String: String] = [:],
                               pipeline file: URL? = nil) async throws -> ProcessResult {
        guard let days else { preconditionFailure("LeadFlowCLI made without days, run with day: \(n)") }
        return try await self(arguments, at: days(n), input: input, extra: extra, pipeline: file)
    }
}

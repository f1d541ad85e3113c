import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStore

extension GapReport.Format: ExpressibleByArgument {}

extension LeadFlow {
    struct Gaps: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The gap report: per connection and void period, leads recovered, missing and lost.",
            discussion: """
                Per connection and void period: start, end (or open), cause, duration; recovered (leads created inside the period and now loaded); missing (what Facebook's form counters say it still returns beyond what Integrate holds, attributed to a period where the evidence allows, marked ~ as an estimate otherwise); lost (the rise of expired_leads_count across the period until its backfill); and a status: open, awaiting_backfill, recovered, partly_lost. Also per connection: days since authentication, the reminder, rejected leads by reason, the last healthy run; and totals per instance. Reads Postgres only (the counters come from the runs' form snapshots).

                Formats: table (a terminal), md (a ticket), csv (one row per void period), json (the shape in DESIGN.md), html (one self-contained file with a timeline per connection).

                Examples:
                  leadflow gaps
                  leadflow gaps --format md --instance acme
                  leadflow gaps --format html --output gap-report.html
                  leadflow gaps --format csv --from 2026-01-01T00:00:00Z
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption

        @Option(help: "table, md, csv, json or html.")
        var format: GapReport.Format = .table

        @Option(help: "Write the report to this file instead of stdout.")
        var output: String?

        @Option(help: "Only this instance's connections.")
        var instance: String?

        @Option(help: "Only void periods that end after this instant (ISO 8601).")
        var from: String?

        @Option(help: "Only void periods that start before this instant (ISO 8601).")
        var to: String?

        func validate() throws {
            for (name, value) in [("--from", from), ("--to", to)] {
                if let value, UTCTime.parse(value) == nil { throw ValidationError("\(name) is not an ISO 8601 instant: \(value)") }
            }
        }

        func run() async throws {
            common.bootstrapLogging()
            do {
                let wiring = try await Wiring(pipeline: try pipelineOption.load())
                let (instance, now) = (instance, wiring.now)
                let facts = try await wiring.database.run { try GapStore($0).facts(instance: instance, now: now) }
                let report = GapReport.build(facts, policy: wiring.pipeline.tokenPolicy, now: wiring.now,
                                             from: from.flatMap(UTCTime.parse), to: to.flatMap(UTCTime.parse))
                let text = report.render(format)
                if let output {
                    try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
                    Output.say("wrote the \(format.rawValue) gap report to \(output)\n")
                } else {
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
            } catch {
                throw ExitStatus.report(error)
            }
        }
    }
}

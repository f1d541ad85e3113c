import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStore

extension GapReport.Format: ExpressibleByArgument {}

extension LeadFlow {
    struct Gaps: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The gap report: who must act, by when; per connection and void period, leads recovered, waiting and lost.",
            discussion: """
                Opens with a headline per instance: one sentence per connection that needs someone, most urgent first (who must reauthenticate or backfill, by when, how many leads wait in Facebook), or "all connections healthy".

                Per connection: the Page and the Connector Authenticator by name (ids in brackets), its status, the reminder and the end of its authentication, and recover_by: the start of its oldest void period not yet recovered plus Facebook's 90-day retention, the day its first leads are lost. Per void period, numbered per connection: start, end (or open), cause, duration in days; recovered (leads created inside the period and now loaded); waiting (what Facebook's form counters say it still keeps beyond what Integrate holds, attributed to a period where the evidence allows, marked ~ as an estimate otherwise; an open period's is the Page's lead rate before it times the days since its last healthy run); lost (the rise of expired_leads_count across the period until its backfill, or an open period's days past the retention); recover_by; and a status: open, awaiting_backfill, recovered, partly_lost. Also rejected leads by reason, the last healthy run, and totals per instance. Reads Postgres only (the counters come from the runs' form snapshots).

                Formats: table (a terminal), md (a ticket), csv (one row per void period, and one per connection without any), json (the shape in DESIGN.md, "schema_version": 2), html (one self-contained file: per connection a timeline of leads loaded, waiting and lost per day over its authentication cycles, with each recover_by marked). With --instance, only that instance's connections and names: a page to send to that customer. Dates people read are in --tz (default UTC); CSV and JSON instants are UTC.

                Examples:
                  leadflow gaps
                  leadflow gaps --format md --instance acme
                  leadflow gaps --format html --instance globex --tz Europe/Madrid --output globex.html
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

        @Option(help: "The time zone of the dates people read (IANA name, e.g. Europe/Berlin); CSV and JSON instants stay UTC.")
        var tz = "UTC"

        @Option(help: "Only void periods that end after this instant (ISO 8601).")
        var from: String?

        @Option(help: "Only void periods that start before this instant (ISO 8601).")
        var to: String?

        func validate() throws {
            for (name, value) in [("--from", from), ("--to", to)] {
                if let value, UTCTime.parse(value) == nil { throw ValidationError("\(name) is not an ISO 8601 instant: \(value)") }
            }
            if timeZone == nil { throw ValidationError("--tz is not a time zone name (like UTC or Europe/Berlin): \(tz)") }
        }

        /// Only names, not abbreviations ("CET") or offsets: Postgres cuts the timeline's days
        /// by the same name, and an abbreviation can mean different zones to the two.
        var timeZone: TimeZone? {
            tz == "UTC" ? TimeZone(secondsFromGMT: 0) : tz.contains("/") ? TimeZone(identifier: tz) : nil
        }

        func run() async throws {
            common.bootstrapLogging()
            do {
                let wiring = try await Wiring(pipeline: try pipelineOption.load())
                let (instance, now, tz) = (instance, wiring.now, tz)
                let facts = try await wiring.database.run { try GapStore($0).facts(instance: instance, now: now, timeZone: tz) }
                let report = GapReport.build(facts, policy: wiring.pipeline.tokenPolicy, now: wiring.now,
                                             from: from.flatMap(UTCTime.parse), to: to.flatMap(UTCTime.parse),
                                             timeZone: timeZone ?? TimeZone(secondsFromGMT: 0)!)
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

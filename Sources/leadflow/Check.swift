import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStages

extension LeadFlow {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate every connection's token age and permissions now (the preflight of a run).",
            discussion: """
                For each connection: the 90-day policy (reminder from day 75), debug_token, me/permissions and has_lead_access. A failure opens a void period at the earliest evidence (the expiry instant when known, else now); a due reminder is written to the outbox once per authentication cycle. A void connection stays void until `leadflow connect` reauthenticates it. No lead is read.

                Exit codes: 0 all healthy (reminders may be due), 2 at least one connection void.

                Example:
                  leadflow check
                  leadflow check --json | jq '.connections[] | select(.state == "void")'
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption

        @Flag(help: "Print JSON on stdout as well as the table on stderr.")
        var json = false

        struct Row: Encodable {
            let connection: String
            /// healthy, reminder_due, void or unchecked.
            let state: String
            let cause: String?
            let since: String?
            let detail: String?
            let reminder_written: Bool
        }

        func run() async throws {
            common.bootstrapLogging()
            let results: [PreflightStage.Result]
            do {
                let wiring = try await Wiring(pipeline: try pipelineOption.load())
                let stage = PreflightStage(graph: try wiring.graph(), repository: wiring.connections, sealer: try await wiring.vault(),
                                           settings: try wiring.validationSettings())
                results = try await stage.checkAll(now: wiring.now)
            } catch {
                throw ExitStatus.report(error)
            }
            let rows = results.map { result -> [String] in
                switch result.outcome {
                case .checked(.healthy): return [result.label, "healthy", ""]
                case .checked(.reminderDue): return [result.label, "reminder due", result.wroteReminder ? "reminder written" : ""]
                case .checked(.void(let cause, let detail, let since)):
                    return [result.label, "void", "\(cause.rawValue) since \(UTCTime.iso8601(since)): \(detail)"]
                case .unchecked(let reason): return [result.label, "unchecked", reason]
                case .superseded: return [result.label, "reauthenticated", "reauthenticated while checked; check again"]
                }
            }
            let void = results.contains { if case .checked(.void) = $0.outcome { return true } else { return false } }
            if json {
                try printJSON(["connections": results.map { result -> Row in
                    switch result.outcome {
                    case .checked(.healthy):
                        return Row(connection: result.label, state: "healthy", cause: nil, since: nil, detail: nil, reminder_written: false)
                    case .checked(.reminderDue):
                        return Row(connection: result.label, state: "reminder_due", cause: nil, since: nil, detail: nil,
                                   reminder_written: result.wroteReminder)
                    case .checked(.void(let cause, let detail, let since)):
                        return Row(connection: result.label, state: "void", cause: cause.rawValue, since: UTCTime.iso8601(since), detail: detail,
                                   reminder_written: false)
                    case .unchecked(let reason):
                        return Row(connection: result.label, state: "unchecked", cause: nil, since: nil, detail: reason, reminder_written: false)
                    case .superseded:
                        return Row(connection: result.label, state: "reauthenticated", cause: nil, since: nil,
                                   detail: "reauthenticated while checked; check again", reminder_written: false)
                    }
                }])
            }
            // Under --quiet the table shows only when a connection is void (exit 2).
            Output.say(TextTable.render(["connection", "state", "detail"], rows), level: void ? .warning : .notice)
            if void { throw ExitStatus.finishedWithGaps }
        }
    }
}

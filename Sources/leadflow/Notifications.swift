import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStore

extension LeadFlow {
    struct Notifications: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the notification outbox: pending, delivered and failing deliveries, with attempts and the last error.",
            discussion: """
                One line per event and channel (webhook, mail:authenticator, mail:csm), newest first. "pending" has not been tried yet; "failing" has been tried and waits for its next attempt (the error says why, without secrets or addresses); an event with no channel was recorded while nothing was configured to receive it. Reads the database only.

                Examples:
                  leadflow notifications
                  leadflow notifications --json | jq '.notifications[] | select(.deliveries[].state == "failing")'
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption

        @Flag(help: "Print JSON on stdout instead of a table.")
        var json = false

        @Option(help: "Show at most this many events (newest first).")
        var limit = 200

        func validate() throws {
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 100000.") }
        }

        struct Delivery: Encodable {
            let channel, state: String
            let attempts: Int
            let last_attempt_at, next_attempt_at, delivered_at, last_error: String?
        }

        struct Row: Encodable {
            let id, type, occurred_at, instance, page_id, connection: String
            let routed: Bool
            let deliveries: [Delivery]
        }

        func run() async throws {
            common.bootstrapLogging()
            let statuses: [NotificationStatus]
            do {
                let wiring = try await Wiring(pipeline: try pipelineOption.load())
                statuses = try await NotificationStore(wiring.database).statuses(limit: limit)
            } catch {
                throw ExitStatus.report(error)
            }
            let rows = statuses.map { status in
                Row(id: status.eventID, type: status.type.rawValue, occurred_at: UTCTime.iso8601(status.occurredAt),
                    instance: status.instance, page_id: status.pageID, connection: status.label, routed: status.routedAt != nil,
                    deliveries: status.deliveries.map {
                        Delivery(channel: $0.channel.rawValue, state: $0.state, attempts: $0.attempts,
                                 last_attempt_at: $0.lastAttemptAt.map(UTCTime.iso8601), next_attempt_at: $0.deliveredAt == nil
                                     ? $0.nextAttemptAt.map(UTCTime.iso8601) : nil,
                                 delivered_at: $0.deliveredAt.map(UTCTime.iso8601), last_error: $0.lastError)
                    })
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                FileHandle.standardOutput.write(try encoder.encode(["notifications": rows]) + Data("\n".utf8))
            } else {
                FileHandle.standardOutput.write(Data(Self.table(rows).utf8))
            }
        }

        static func table(_ rows: [Row]) -> String {
            var lines: [[String]] = []
            for row in rows {
                let head = [String(row.id.prefix(8)), row.type, row.connection, row.occurred_at]
                if row.deliveries.isEmpty {
                    lines.append(head + ["-", row.routed ? "not sent: no channel configured" : "pending", "0", ""])
                }
                for delivery in row.deliveries {
                    let state = delivery.state == "failing" ? "failing (next \(delivery.next_attempt_at ?? "?"))" : delivery.state
                    lines.append(head + [delivery.channel, state, String(delivery.attempts), delivery.last_error ?? ""])
                }
            }
            return TextTable.render(["event", "type", "connection", "occurred", "channel", "state", "attempts", "last error"], lines)
        }
    }
}

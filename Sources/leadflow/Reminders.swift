import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStore

extension LeadFlow {
    struct Reminders: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List reminders due (day 75) and expired connections, writing each to the outbox once.",
            discussion: """
                For every connection whose reminder is due or overdue, or whose authentication has ended, writes one reminder per authentication cycle into the `reminders` table, with its reminder.due or reminder.expired notification (delivered by `leadflow notify` and every run; docs/connections.md, "Notifications"), then lists the reminders of the current cycles and whether each reached someone. Reads no Graph API. `leadflow check` and runs write them too.

                Examples:
                  leadflow reminders
                  leadflow reminders --json
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption

        @Flag(help: "Print JSON on stdout instead of a table.")
        var json = false

        struct Row: Encodable {
            let connection, instance, page_id, kind, due_at, expires_at, created_at: String
            let delivered_at: String?
        }

        func run() async throws {
            common.bootstrapLogging()
            let reminders: [Reminder]
            do {
                let wiring = try await Wiring(pipeline: try pipelineOption.load())
                let store = wiring.connections
                let policy = try wiring.validationSettings().policy
                for record in try await store.all() {
                    let evaluation = record.evaluate(policy, now: wiring.now)
                    switch evaluation.status {
                    case .healthy:
                        continue
                    case .reminderDue:
                        try await store.writeReminder(connectionID: record.id, kind: "reauthentication_due", cycleStartedAt: record.authenticatedAt,
                                                dueAt: evaluation.reminderAt, expiresAt: evaluation.expiresAt, now: wiring.now)
                    case .expired:
                        try await store.writeReminder(connectionID: record.id, kind: "reauthentication_due", cycleStartedAt: record.authenticatedAt,
                                                dueAt: evaluation.reminderAt, expiresAt: evaluation.expiresAt, now: wiring.now)
                        try await store.writeReminder(connectionID: record.id, kind: "expired", cycleStartedAt: record.authenticatedAt,
                                                dueAt: evaluation.expiresAt, expiresAt: evaluation.expiresAt, now: wiring.now)
                    }
                }
                reminders = try await store.reminders()
            } catch {
                throw ExitStatus.report(error)
            }
            let rows = reminders.map {
                Row(connection: $0.connectionLabel, instance: $0.instance, page_id: $0.pageID, kind: $0.kind,
                    due_at: UTCTime.iso8601($0.dueAt), expires_at: UTCTime.iso8601($0.expiresAt),
                    created_at: UTCTime.iso8601($0.createdAt), delivered_at: $0.deliveredAt.map(UTCTime.iso8601))
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                FileHandle.standardOutput.write(try encoder.encode(["reminders": rows]) + Data("\n".utf8))
            } else {
                let table = TextTable.render(["connection", "instance", "page", "reminder", "due", "expires", "delivered"],
                                        rows.map { [$0.connection, $0.instance, $0.page_id, $0.kind, $0.due_at, $0.expires_at, $0.delivered_at ?? "no"] })
                FileHandle.standardOutput.write(Data(table.utf8))
            }
        }
    }
}

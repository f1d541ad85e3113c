import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStore

extension LeadFlow {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every connection: token age, days left, open void periods, leads loaded, its last run and last success.",
            discussion: """
                Reads the database only (no Graph call): the status follows from the last authentication, the 90-day policy and the void periods the runs recorded.

                Examples:
                  leadflow status
                  leadflow status --json | jq '.connections[] | select(.status == "void")'
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption

        @Flag(help: "Print JSON on stdout instead of a table.")
        var json = false

        struct Row: Encodable {
            let instance, page_id, label: String
            let page_name: String?
            let authenticator_user_id: String
            let authenticator_name: String?
            let authenticated_at: String
            let age_days: Double
            let days_until_reminder: Double
            let days_until_expiry: Double
            let expires_at: String
            let status: String
            let void_cause: String?
            let void_since: String?
            let leads_loaded: Int
            let last_loaded_at: String?
            /// Leads Facebook's form counters hold that this connection's instance does not
            /// (late ones not returned yet, or never): the last reconciliation's finding.
            let leads_missing: Int
            /// The last run that looked at the connection, and the last whose pass loaded it (a
            /// pass that found nothing new loads too): ids and the runs' clocks.
            let last_run_id: Int64?
            let last_run_at: String?
            let last_success_run_id: Int64?
            let last_success_at: String?
        }

        func run() async throws {
            common.bootstrapLogging()
            let rows: [Row]
            do {
                let wiring = try await Wiring(pipeline: try pipelineOption.load())
                rows = try await Self.rows(wiring.database, policy: try wiring.validationSettings().policy, now: wiring.now)
            } catch {
                throw ExitStatus.report(error)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let data = try encoder.encode(["connections": rows])
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            } else {
                FileHandle.standardOutput.write(Data(Self.table(rows).utf8))
            }
        }

        /// Every connection's state at `now` under `policy`.
        static func rows(_ database: PostgresSession, policy: TokenPolicy, now: Date) async throws -> [Row] {
            let loaded = try await database.run { try leadCounts($0) }
            let missing = try await database.run { try missingCounts($0) }
            let runs = try await RunHistoryStore(database).lastRuns()
            return try await ConnectionStore(database).all().map { record in
                let last = runs[record.id]
                let evaluation = record.evaluate(policy, now: now)
                let status: String
                if record.openVoidPeriod != nil {
                    status = "void"
                } else {
                    switch evaluation.status {
                    case .healthy: status = "healthy"
                    case .reminderDue: status = "reminder_due"
                    case .expired: status = "expired"
                    }
                }
                let round = { (value: TimeInterval) in (value / 86_400 * 10).rounded() / 10 }
                return Row(instance: record.instance, page_id: record.pageID, label: record.label, page_name: record.pageName,
                           authenticator_user_id: record.authenticatorUserID, authenticator_name: record.authenticatorName,
                           authenticated_at: UTCTime.iso8601(record.authenticatedAt),
                           age_days: round(now.timeIntervalSince(record.authenticatedAt)),
                           days_until_reminder: round(evaluation.reminderAt.timeIntervalSince(now)),
                           days_until_expiry: round(evaluation.expiresAt.timeIntervalSince(now)),
                           expires_at: UTCTime.iso8601(evaluation.expiresAt), status: status,
                           void_cause: record.openVoidPeriod?.cause.rawValue,
                           void_since: record.openVoidPeriod.map { UTCTime.iso8601($0.startedAt) },
                           leads_loaded: loaded[record.id]?.count ?? 0,
                           last_loaded_at: loaded[record.id]?.last.map(UTCTime.iso8601),
                           leads_missing: missing[record.id] ?? 0,
                           last_run_id: last?.lastRunID, last_run_at: last?.lastRunAt.map(UTCTime.iso8601),
                           last_success_run_id: last?.lastSuccessRunID, last_success_at: last?.lastSuccessAt.map(UTCTime.iso8601))
            }
        }

        static func table(_ rows: [Row]) -> String {
            TextTable.render(
                ["instance", "page", "connection", "authenticator", "age (d)", "reminder in (d)", "expires in (d)", "status", "void since", "leads",
                 "missing", "last run", "last success"],
                // Names for people, ids beside them for the Graph API Explorer and support.
                rows.map { [$0.instance, named($0.page_name, $0.page_id), $0.label, named($0.authenticator_name, $0.authenticator_user_id),
                            String($0.age_days),
                            String($0.days_until_reminder), String($0.days_until_expiry),
                            $0.status + ($0.void_cause.map { " (\($0))" } ?? ""), $0.void_since ?? "", String($0.leads_loaded),
                            String($0.leads_missing), $0.last_run_at ?? "never", $0.last_success_at ?? "never"] })
        }

        /// `Acme Analytics (1001)`, or the id alone when Facebook gave no name.
        static func named(_ name: String?, _ id: String) -> String {
            name.map { "\($0) (\(id))" } ?? id
        }

        struct LoadedLeads: Sendable {
            let count: Int
            let last: Date?
        }

        /// Per connection, the leads its forms' last reconciliation found missing.
        static func missingCounts(_ db: PostgresConnection) throws -> [Int64: Int] {
            var counts: [Int64: Int] = [:]
            for row in try db.query("SELECT connection_id, sum(missing) FROM form_reconciliations GROUP BY connection_id",
                                    label: "missing leads").all {
                counts[Int64(try row.int(0)!)] = try row.int(1) ?? 0
            }
            return counts
        }

        /// Leads loaded per connection, and the last load.
        static func leadCounts(_ db: PostgresConnection) throws -> [Int64: LoadedLeads] {
            var counts: [Int64: LoadedLeads] = [:]
            for row in try db.query("SELECT connection_id, count(*), max(loaded_at) FROM leads GROUP BY connection_id", label: "lead counts").all {
                counts[Int64(try row.int(0)!)] = LoadedLeads(count: try row.int(1) ?? 0, last: try row.date(2))
            }
            return counts
        }
    }
}

import ArgumentParser
import Foundation
import LeadFlowPostgres
import LeadFlowStore
import Logging

extension LeadFlow {
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or upgrade the database schema.",
            discussion: """
                Applies every migration the database lacks, in order, each in its own transaction, and records it in schema_migrations. Running it again is a no-op. It refuses a database whose schema is newer than this binary. Every other command migrates too before its work, so this is for deployments that upgrade the schema as a step of their own.

                Without DATABASE_URL, every command uses LeadFlow's own Postgres cluster (created under LEADFLOW_HOME, or /var/lib/leadflow/clusters/ when run as root; started on a unix socket, stopped at exit).

                Example:
                  DATABASE_URL=postgresql://leadflow@localhost/leadflow leadflow migrate
                """
        )

        @OptionGroup var common: CommonOptions

        func run() async throws {
            common.bootstrapLogging()
            let environment = Environment()
            do {
                let now = try environment.now()
                let (session, cluster, _) = try await Wiring.openDatabase(environment, logger: Logger(label: "leadflow"))
                defer { withExtendedLifetime(cluster) {} }
                let outcome = try await session.run { try Migrator().migrate($0, now: now) }
                let message = outcome.applied.isEmpty
                    ? "schema is current (version \(outcome.version))"
                    : "applied migration\(outcome.applied.count == 1 ? "" : "s") \(outcome.applied.map(String.init).joined(separator: ", ")); schema is at version \(outcome.version)"
                Output.say("leadflow: \(message)")
            } catch {
                throw ExitStatus.report(error)
            }
        }
    }
}

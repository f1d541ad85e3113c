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
                Applies every migration the database lacks, in order, each in its own transaction, and records it in schema_migrations. Running it again is a no-op. It refuses a database whose schema is newer than this binary.

                Example:
                  DATABASE_URL=postgresql://leadflow@localhost/leadflow leadflow migrate
                """
        )

        @OptionGroup var common: CommonOptions

        func run() async throws {
            common.bootstrapLogging()
            let environment = Environment()
            do {
                let url = try environment.databaseURL()
                let now = try environment.now()
                let connection = try PostgresConnection(conninfo: url)
                let outcome = try Migrator().migrate(connection, now: now)
                let message = outcome.applied.isEmpty
                    ? "schema is current (version \(outcome.version))"
                    : "applied migration\(outcome.applied.count == 1 ? "" : "s") \(outcome.applied.map(String.init).joined(separator: ", ")); schema is at version \(outcome.version)"
                FileHandle.standardError.write(Data("leadflow: \(message)\n".utf8))
            } catch {
                throw ExitStatus.report(error)
            }
        }
    }
}

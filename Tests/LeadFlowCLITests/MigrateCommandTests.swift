import Foundation
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// The CLI as a user runs it: the built binary, its exit codes and what it prints.
@Suite struct MigrateCommandTests {
    static let binary = Repository.root.appendingPathComponent(".build/debug/leadflow").path

    func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DATABASE_URL")
        return env.merging(extra) { $1 }
    }

    @Test func migrateTwiceThenTheSchemaIsCurrent() throws {
        let url = try TestDatabase.create("cli")
        let first = try runProgram(Self.binary, ["migrate"], environment: environment(["DATABASE_URL": url]))
        #expect(first.status == 0, "\(first.stderr)")
        let versions = Migrations.all.map { String($0.version) }.joined(separator: ", ")
        #expect(first.stderr.contains("applied migrations \(versions); schema is at version \(Migrations.latestVersion)"))
        let second = try runProgram(Self.binary, ["migrate"], environment: environment(["DATABASE_URL": url]))
        #expect(second.status == 0)
        #expect(second.stderr.contains("schema is current (version \(Migrations.latestVersion))"))
        #expect(second.stdout.isEmpty)
    }

    @Test func aMissingDatabaseURLIsBadConfiguration() throws {
        let result = try runProgram(Self.binary, ["migrate"], environment: environment([:]))
        #expect(result.status == 64)
        #expect(result.stderr.contains("DATABASE_URL is not set"))
    }

    @Test func anUnreachableDatabaseFailsWithoutLeakingThePassword() throws {
        let result = try runProgram(Self.binary, ["migrate"],
                                    environment: environment(["DATABASE_URL": "postgresql://lf:hunter2secret@127.0.0.1:1/x?connect_timeout=2"]))
        #expect(result.status == 1)
        #expect(result.stderr.contains("postgres.connect"))
        #expect(!result.stderr.contains("hunter2secret"))
    }

    @Test func helpNamesEveryCommandAndTheExitCodes() throws {
        let result = try runProgram(Self.binary, ["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("migrate"))
        #expect(result.stdout.contains("64  bad input or configuration"))
        let migrateHelp = try runProgram(Self.binary, ["migrate", "--help"])
        #expect(migrateHelp.stdout.contains("Example:"))
    }

    @Test func anUnknownOptionIsBadInput() throws {
        let result = try runProgram(Self.binary, ["migrate", "--no-such-option"])
        #expect(result.status == 64)
    }
}

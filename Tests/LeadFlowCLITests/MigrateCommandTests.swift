import Foundation
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// The CLI as a user runs it: the built binary, its exit codes and what it prints.
@Suite struct MigrateCommandTests {

    func environment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DATABASE_URL")
        return env.merging(extra) { $1 }
    }

    @Test func migrateTwiceThenTheSchemaIsCurrent() throws {
        let url = try TestDatabase.create("cli")
        let first = try runProgram(LeadFlowBinary.path, ["migrate"], environment: environment(["DATABASE_URL": url]))
        #expect(first.status == 0, "\(first.stderr)")
        let versions = Migrations.all.map { String($0.version) }.joined(separator: ", ")
        #expect(first.stderr.contains("applied migrations \(versions); schema is at version \(Migrations.latestVersion)"))
        let second = try runProgram(LeadFlowBinary.path, ["migrate"], environment: environment(["DATABASE_URL": url]))
        #expect(second.status == 0)
        #expect(second.stderr.contains("schema is current (version \(Migrations.latestVersion))"))
        #expect(second.stdout.isEmpty)
    }

    /// Without DATABASE_URL: LeadFlow's own cluster, created once, started for the command,
    /// stopped when it ends, and reused (data kept) by the next command.
    @Test func withoutDatabaseURLLeadFlowRunsItsOwnPostgres() throws {
        let home = try Repository.temporaryFolder("embedded")
        let first = try runProgram(LeadFlowBinary.path, ["migrate"], environment: environment(["LEADFLOW_HOME": home.path]))
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("created the embedded Postgres cluster"))
        #expect(first.stderr.contains("applied migrations"))
        // One line says which database a command without DATABASE_URL uses, even under --quiet.
        #expect(first.stderr.components(separatedBy: "DATABASE_URL is unset: using LeadFlow's own Postgres in ").count == 2, "\(first.stderr)")
        let quiet = try runProgram(LeadFlowBinary.path, ["migrate", "--quiet"], environment: environment(["LEADFLOW_HOME": home.path]))
        #expect(quiet.stderr.split(separator: "\n").count == 1 && quiet.stderr.contains("using LeadFlow's own Postgres"), "\(quiet.stderr)")
        let dataLine = try #require(first.stderr.split(separator: "\n").first { $0.contains("postgres.data=") })
        let data = String(dataLine.split(separator: "postgres.data=")[1].split(separator: " ")[0])
        defer { try? FileManager.default.removeItem(atPath: data) }
        #expect(FileManager.default.fileExists(atPath: data + "/PG_VERSION"))
        // Stopped at exit: no server holds the folder.
        #expect(!FileManager.default.fileExists(atPath: data + "/postmaster.pid"))

        let second = try runProgram(LeadFlowBinary.path, ["migrate"], environment: environment(["LEADFLOW_HOME": home.path]))
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("schema is current"))
        #expect(!second.stderr.contains("created"))
        #expect(!FileManager.default.fileExists(atPath: data + "/postmaster.pid"))
    }

    /// The process that started the cluster leaves it running while another process is
    /// connected (an overlapping run), and stops it once that one has gone.
    @Test func theEmbeddedClusterIsNotStoppedUnderAnotherProcess() throws {
        let home = try Repository.temporaryFolder("shared")
        let cluster = try EmbeddedCluster.start(home: home)
        cluster.keepRunning = true
        defer { try? cluster.stop(); try? FileManager.default.removeItem(at: cluster.dataDirectory) }
        let other = Process()
        other.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        other.arguments = [cluster.conninfo, "-qAtc", "SELECT pg_sleep(3)"]
        other.standardOutput = FileHandle.nullDevice
        other.standardError = FileHandle.nullDevice
        try other.run()
        // Wait until its session is there.
        let watcher = try PostgresConnection(conninfo: cluster.conninfo)
        for _ in 0..<100 where try watcher.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%' AND pid <> pg_backend_pid()")[0].int(0) == 0 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        try cluster.stopUnlessShared()
        #expect(FileManager.default.fileExists(atPath: cluster.dataDirectory.appendingPathComponent("postmaster.pid").path), "left running for the other process")
        other.waitUntilExit()
        #expect(other.terminationStatus == 0, "the other process finished its work")
        try cluster.stopUnlessShared()
        #expect(!FileManager.default.fileExists(atPath: cluster.dataDirectory.appendingPathComponent("postmaster.pid").path), "stopped once alone")
    }

    @Test func aMissingPostgresServerIsNamedInOneSentence() throws {
        let home = try Repository.temporaryFolder("noserver")
        let result = try runProgram(LeadFlowBinary.path, ["status"], environment: environment(["LEADFLOW_HOME": home.path,
                                                                                        "LEADFLOW_POSTGRES_BIN": "/nonexistent/bin"]))
        #expect(result.status == 64)
        #expect(result.stderr.contains("apt-get install postgresql"))
    }

    @Test func anUnreachableDatabaseFailsWithoutLeakingThePassword() throws {
        let result = try runProgram(LeadFlowBinary.path, ["migrate"],
                                    environment: environment(["DATABASE_URL": "postgresql://lf:hunter2secret@127.0.0.1:1/x?connect_timeout=2"]))
        #expect(result.status == 1)
        #expect(result.stderr.contains("postgres.connect"))
        #expect(!result.stderr.contains("hunter2secret"))
    }

    @Test func helpNamesEveryCommandAndTheExitCodes() throws {
        let result = try runProgram(LeadFlowBinary.path, ["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("migrate"))
        #expect(result.stdout.contains("64  bad input or configuration"))
        // Every command says what it does, its options with defaults, and an example, in 80 columns.
        for command in [["demo"], ["migrate"], ["connect"], ["check"], ["run"], ["backfill"], ["gaps"], ["status"], ["reminders"],
                        ["archive", "list"], ["archive", "verify"], ["archive", "extract"]] {
            let help = try runProgram(LeadFlowBinary.path, command + ["--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("OVERVIEW: "), "\(command)")
            #expect(help.stdout.contains("Example"), "\(command) has no example")
            #expect(help.stdout.contains("--log-level"), "\(command)")
        }
    }

    @Test func anUnknownOptionIsBadInput() throws {
        let result = try runProgram(LeadFlowBinary.path, ["migrate", "--no-such-option"])
        #expect(result.status == 64)
    }
}

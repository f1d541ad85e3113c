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

    @Test func migrateTwiceThenTheSchemaIsCurrent() async throws {
        let url = try TestDatabase.create("cli")
        let first = try await runProgram(LeadFlowBinary.path, ["migrate"], environment: environment(["DATABASE_URL": url]))
        #expect(first.status == 0, "\(first.stderr)")
        let versions = Migrations.all.map { String($0.version) }.joined(separator: ", ")
        #expect(first.stderr.contains("applied migrations \(versions); schema is at version \(Migrations.latestVersion)"))
        let second = try await runProgram(LeadFlowBinary.path, ["migrate"], environment: environment(["DATABASE_URL": url]))
        #expect(second.status == 0)
        #expect(second.stderr.contains("schema is current (version \(Migrations.latestVersion))"))
        #expect(second.stdout.isEmpty)
    }

    /// Without DATABASE_URL: LeadFlow's own cluster, created once, started for the command,
    /// stopped when it ends, and reused (data kept) by the next command.
    @Test func withoutDatabaseURLLeadFlowRunsItsOwnPostgres() async throws {
        let home = try Repository.temporaryFolder("embedded")
        let first = try await runProgram(LeadFlowBinary.path, ["migrate"], environment: environment(["LEADFLOW_HOME": home.path]))
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("created the embedded Postgres cluster"))
        #expect(first.stderr.contains("applied migrations"))
        // One line says which database a command without DATABASE_URL uses, even under --quiet.
        #expect(first.stderr.components(separatedBy: "DATABASE_URL is unset: using LeadFlow's own Postgres in ").count == 2, "\(first.stderr)")
        let quiet = try await runProgram(LeadFlowBinary.path, ["migrate", "--quiet"], environment: environment(["LEADFLOW_HOME": home.path]))
        #expect(quiet.stderr.split(separator: "\n").count == 1 && quiet.stderr.contains("using LeadFlow's own Postgres"), "\(quiet.stderr)")
        let dataLine = try #require(first.stderr.split(separator: "\n").first { $0.contains("postgres.data=") })
        let data = String(dataLine.split(separator: "postgres.data=")[1].split(separator: " ")[0])
        defer { try? FileManager.default.removeItem(atPath: data) }
        #expect(FileManager.default.fileExists(atPath: data + "/PG_VERSION"))
        // Stopped at exit: no server holds the folder.
        #expect(!FileManager.default.fileExists(atPath: data + "/postmaster.pid"))

        let second = try await runProgram(LeadFlowBinary.path, ["migrate"], environment: environment(["LEADFLOW_HOME": home.path]))
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("schema is current"))
        #expect(!second.stderr.contains("created"))
        #expect(!FileManager.default.fileExists(atPath: data + "/postmaster.pid"))
    }

    /// The process that started the cluster leaves it running while another process is
    /// connected (an overlapping run), and stops it once that one has gone.
    @Test func theEmbeddedClusterIsNotStoppedUnderAnotherProcess() async throws {
        let home = try Repository.temporaryFolder("shared")
        let cluster = try EmbeddedCluster.start(home: home)
        cluster.keepRunning = true
        defer { try? cluster.stop(); try? FileManager.default.removeItem(at: cluster.dataDirectory) }
        let other = Process()
        other.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
        // Far longer than any machine takes to get to the check; ended by the test itself.
        other.arguments = [cluster.conninfo, "-qAtc", "SELECT pg_sleep(120)"]
        other.standardOutput = FileHandle.nullDevice
        other.standardError = FileHandle.nullDevice
        try other.run()
        // Wait until its session is there.
        let watcher = try PostgresConnection(conninfo: cluster.conninfo)
        let othersSession = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()"
        for _ in 0..<1_200 where try watcher.query(othersSession)[0].int(0) == 0 {
            try await Task.sleep(for: .seconds(0.05))
        }
        #expect(try watcher.query(othersSession)[0].int(0) == 1)
        try cluster.stopUnlessShared()
        #expect(FileManager.default.fileExists(atPath: cluster.dataDirectory.appendingPathComponent("postmaster.pid").path), "left running for the other process")
        // The other process goes.
        try watcher.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()")
        await other.exited()
        try cluster.stopUnlessShared()
        #expect(!FileManager.default.fileExists(atPath: cluster.dataDirectory.appendingPathComponent("postmaster.pid").path), "stopped once alone")
    }

    @Test func aMissingPostgresServerIsNamedInOneSentence() async throws {
        let home = try Repository.temporaryFolder("noserver")
        let result = try await runProgram(LeadFlowBinary.path, ["status"], environment: environment(["LEADFLOW_HOME": home.path,
                                                                                        "LEADFLOW_POSTGRES_BIN": "/nonexistent/bin"]))
        #expect(result.status == 64)
        #expect(result.stderr.contains("apt-get install postgresql"))
    }

    @Test func anUnreachableDatabaseFailsWithoutLeakingThePassword() async throws {
        let result = try await runProgram(LeadFlowBinary.path, ["migrate"],
                                    environment: environment(["DATABASE_URL": "postgresql://lf:hunter2secret@127.0.0.1:1/x?connect_timeout=2"]))
        #expect(result.status == 1)
        #expect(result.stderr.contains("postgres.connect"))
        #expect(!result.stderr.contains("hunter2secret"))
    }

    @Test func anUnknownOptionIsBadInput() async throws {
        let result = try await runProgram(LeadFlowBinary.path, ["migrate", "--no-such-option"])
        #expect(result.status == 64)
    }
}

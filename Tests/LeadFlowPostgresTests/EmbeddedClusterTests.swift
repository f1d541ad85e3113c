import Foundation
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// LeadFlow's own Postgres holds none of LeadFlow's secrets and lets in only its own user.
/// Under root (as in CI) the cluster runs as the unprivileged `leadflow` user.
@Suite struct EmbeddedClusterTests {
    func start(_ home: URL) throws -> EmbeddedCluster {
        let cluster = try EmbeddedCluster.start(home: home)
        cluster.keepRunning = true
        return cluster
    }

    func finish(_ cluster: EmbeddedCluster) {
        try? cluster.stop()
        try? FileManager.default.removeItem(at: cluster.dataDirectory)
    }

    func hbaRules(_ cluster: EmbeddedCluster) throws -> [String] {
        try String(contentsOf: cluster.dataDirectory.appendingPathComponent("pg_hba.conf"), encoding: .utf8)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    @Test func theServerGetsACleanEnvironmentAPrivateSocketFolderAndPeerAuthentication() async throws {
        // Set in this process, as the CronJob sets it for leadflow; restored after.
        let secret = "app-secret-\(UUID().uuidString)"
        let previous = getenv("LEADFLOW_APP_SECRET").map { String(cString: $0) }
        setenv("LEADFLOW_APP_SECRET", secret, 1)
        defer { if let previous { setenv("LEADFLOW_APP_SECRET", previous, 1) } else { unsetenv("LEADFLOW_APP_SECRET") } }

        let cluster = try start(try Repository.temporaryFolder("embedded-env"))
        defer { finish(cluster) }
        #expect(cluster.startedHere)

        // The postmaster's pid is the first line of postmaster.pid; its environ is what it
        // was started with (backends overwrite theirs with their process title).
        let pidFile = try String(contentsOf: cluster.dataDirectory.appendingPathComponent("postmaster.pid"), encoding: .utf8)
        let pid = try #require(pidFile.split(separator: "\n").first.flatMap { Int32($0) })
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
        let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(!variables.isEmpty)
        #expect(!variables.contains { $0.hasPrefix("LEADFLOW_") }, "\(variables)")
        #expect(!String(decoding: environ, as: UTF8.self).contains(secret))
        // LeadFlow's five, and what sh, pg_ctl and postgres add themselves: nothing else.
        let names = Set(variables.map { String($0.split(separator: "=")[0]) })
        let ours: Set = ["PATH", "LANG", "LC_ALL", "TZ", "HOME"]
        #expect(names.subtracting(ours).isSubset(of: ["PWD", "PGDATA", "PGLOCALEDIR", "PGSYSCONFDIR", "PG_GRANDPARENT_PID"]), "\(variables)")
        #expect(names.isSuperset(of: ours))
        #expect(variables.contains("TZ=UTC") && variables.contains("LC_ALL=C.UTF-8"))

        // Only the cluster's user (and root) may enter the socket's folder.
        var folder = stat()
        #expect(stat(cluster.socketDirectory.path, &folder) == 0)
        #expect(folder.st_mode & 0o777 == 0o700)
        #expect(folder.st_uid == getpwnam(cluster.user)?.pointee.pw_uid)
        if geteuid() == 0 {
            let other = try await runProgram("/usr/sbin/runuser", ["-u", "nobody", "--", "/bin/ls", cluster.socketDirectory.path])
            #expect(other.status != 0 && other.stderr.contains("Permission denied"), "\(other.stderr)")
        }

        // Peer authentication only, over the socket; this process still connects.
        let rules = try hbaRules(cluster)
        #expect(rules == ["local all all peer map=leadflow"])
        #expect(!(try String(contentsOf: cluster.dataDirectory.appendingPathComponent("pg_hba.conf"), encoding: .utf8)).contains("trust"))
        let session = try PostgresConnection(conninfo: cluster.conninfo)
        #expect(try session.query("SELECT current_user")[0].string(0) == cluster.user)
        #expect(try session.query("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method <> 'peer' OR type <> 'local'")[0].int(0) == 0)
    }

    /// A cluster an older LeadFlow initdb'd with `trust` is upgraded when it next starts.
    @Test func aClusterMadeWithTrustGetsPeerAuthenticationAtItsNextStart() async throws {
        let home = try Repository.temporaryFolder("embedded-trust")
        let first = try start(home)
        defer { finish(first) }
        try first.stop()
        let hba = first.dataDirectory.appendingPathComponent("pg_hba.conf")
        var owner = stat()
        #expect(stat(hba.path, &owner) == 0)
        try Data("local all all trust\nhost all all 127.0.0.1/32 trust\n".utf8).write(to: hba)
        _ = chown(hba.path, owner.st_uid, owner.st_gid)

        let again = try start(home)
        #expect(again.startedHere)
        #expect(try hbaRules(again) == ["local all all peer map=leadflow"])
        let session = try PostgresConnection(conninfo: again.conninfo)
        #expect(try session.query("SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust'")[0].int(0) == 0)
        #expect(try session.query("SELECT current_user")[0].string(0) == again.user)
    }

    /// One left running with `trust` (by an older LeadFlow) reloads peer rules when a command
    /// next finds it running: a role the peer map does not name can no longer log in.
    @Test func aRunningClusterWithTrustReloadsPeerAuthenticationWhenFound() async throws {
        let home = try Repository.temporaryFolder("embedded-running")
        let first = try start(home)
        defer { finish(first) }
        let admin = try PostgresConnection(conninfo: first.conninfo(database: "postgres"))
        try admin.execute(raw: RawSQL(label: "test role", "CREATE ROLE someone_else LOGIN"))
        let asSomeoneElse = "host='\(first.socketDirectory.path)' port=5432 user=someone_else dbname=postgres"
        func someoneElseGetsIn() -> Bool { (try? PostgresConnection(conninfo: asSomeoneElse)) != nil }
        #expect(!someoneElseGetsIn(), "peer: this OS user is not someone_else")

        let hba = first.dataDirectory.appendingPathComponent("pg_hba.conf")
        var owner = stat()
        #expect(stat(hba.path, &owner) == 0)
        try Data("local all all trust\n".utf8).write(to: hba)
        _ = chown(hba.path, owner.st_uid, owner.st_gid)
        _ = try admin.query("SELECT pg_reload_conf()")
        for _ in 0..<100 where !someoneElseGetsIn() { try await Task.sleep(for: .milliseconds(50)) }
        #expect(someoneElseGetsIn(), "trust lets anyone in: what the upgrade must end")

        let found = try start(home)
        #expect(!found.startedHere)
        for _ in 0..<100 where someoneElseGetsIn() { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!someoneElseGetsIn())
        #expect(try hbaRules(found) == ["local all all peer map=leadflow"])
    }
}

import Foundation
import LeadFlowCore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// LeadFlow's own Postgres cluster, for when `DATABASE_URL` is unset: initdb'd once with the
/// installed server programs, started on a unix socket only (no port to collide with, no
/// network exposure), reused while running, stopped at exit by whoever started it.
///
/// initdb refuses root, so when root starts it the cluster belongs to the unprivileged
/// `leadflow` user (created when missing) and lives under `/var/lib/leadflow/clusters/`,
/// where that user can reach it; otherwise it lives in `LEADFLOW_HOME/postgres`.
public final class EmbeddedCluster: @unchecked Sendable {
    public let dataDirectory: URL
    public let socketDirectory: URL
    public let user: String
    public let conninfo: String
    /// False when the cluster was already running (another process, or `--keep`): it is left running.
    public let startedHere: Bool
    /// Leave it running at exit.
    public var keepRunning = false
    private let binaries: URL
    private let runAs: String?
    private let logger: Logger

    public static let database = "leadflow"
    static let unprivilegedUser = "leadflow"

    /// - Parameter serverBinaries: the folder holding `initdb` and `pg_ctl` (default: the
    ///   newest `/usr/lib/postgresql/*/bin`, as Debian installs them).
    public static func start(home: URL, serverBinaries: URL? = nil, logger: Logger = Logger(label: "leadflow.postgres")) throws -> EmbeddedCluster {
        guard let binaries = serverBinaries ?? newestServer(),
              FileManager.default.isExecutableFile(atPath: binaries.appendingPathComponent("initdb").path),
              FileManager.default.isExecutableFile(atPath: binaries.appendingPathComponent("pg_ctl").path) else {
            throw EmbeddedClusterError(message: "PostgreSQL's server programs (initdb, pg_ctl) are not installed: run `apt-get install postgresql`, or set DATABASE_URL to a Postgres of your own",
                                       isConfiguration: true)
        }
        let home = home.standardizedFileURL.absoluteURL
        let runAs: String? = geteuid() == 0 ? unprivilegedUser : nil
        let data: URL
        if let runAs {
            try ensureUser(runAs)
            data = URL(fileURLWithPath: "/var/lib/leadflow/clusters/\(stableHash(home.path))")
        } else {
            data = home.appendingPathComponent("postgres")
        }
        // A unix socket path holds at most 107 bytes.
        let socket = data.path.utf8.count + 20 < 107 ? data : URL(fileURLWithPath: "/tmp/leadflow-pg-\(stableHash(data.path))")
        let user = try runAs ?? currentUser()
        // Two commands starting at once: one initdb, one start; the other waits, then reuses it.
        let lockFile = data.deletingLastPathComponent().appendingPathComponent(".\(data.lastPathComponent).lock")
        try FileManager.default.createDirectory(at: data.deletingLastPathComponent(), withIntermediateDirectories: true)
        let lock = open(lockFile.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw EmbeddedClusterError(message: "cannot open \(lockFile.path): \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        let startedHere = try prepareAndStart(data: data, socket: socket, binaries: binaries, runAs: runAs, logger: logger)
        let cluster = EmbeddedCluster(dataDirectory: data, socketDirectory: socket, user: user, binaries: binaries, runAs: runAs,
                                      logger: logger, startedHere: startedHere)
        try cluster.createDatabase()
        return cluster
    }

    private init(dataDirectory: URL, socketDirectory: URL, user: String, binaries: URL, runAs: String?, logger: Logger, startedHere: Bool) {
        self.dataDirectory = dataDirectory
        self.socketDirectory = socketDirectory
        self.user = user
        self.binaries = binaries
        self.runAs = runAs
        self.logger = logger
        self.startedHere = startedHere
        conninfo = Self.conninfo(socket: socketDirectory, user: user, database: Self.database)
    }

    /// The conninfo of another database of this cluster.
    public func conninfo(database: String) -> String {
        Self.conninfo(socket: socketDirectory, user: user, database: database)
    }

    /// libpq conninfo, values quoted (a LEADFLOW_HOME may hold spaces).
    static func conninfo(socket: URL, user: String, database: String) -> String {
        func quoted(_ value: String) -> String {
            "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        return "host=\(quoted(socket.path)) port=5432 user=\(quoted(user)) dbname=\(quoted(database))"
    }

    /// Drops the database if it exists and creates it empty (the demo starts clean each time).
    public func recreateDatabase(_ name: String) throws {
        let admin = try PostgresConnection(conninfo: conninfo(database: "postgres"))
        try admin.execute(raw: RawSQL(label: "drop database", "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
        try admin.execute(raw: RawSQL(label: "create database", "CREATE DATABASE \(name)"))
    }

    deinit {
        if startedHere && !keepRunning { try? stopUnlessShared() }
    }

    /// Stops the cluster this process started, unless another process is using it (an
    /// overlapping run, a second command): then it is left running for them, and said so.
    /// This process's own sessions are ending with it and do not count.
    public func stopUnlessShared() throws {
        let admin = try PostgresConnection(conninfo: conninfo(database: "postgres"))
        let ours = OpenSessions.shared.pids.map(String.init)
        let others = try admin.query("""
            SELECT count(*) FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND NOT (pid = ANY($1::int[]))
            """, [ours], label: "other clients")[0].int(0) ?? 0
        guard others == 0 else {
            logger.notice("the embedded Postgres is in use by another process: left running",
                          metadata: ["postgres.data": "\(dataDirectory.path)", "postgres.stop": "\(stopCommand)"])
            return
        }
        try stop()
    }

    /// The command that stops it by hand (printed with `--keep`).
    public var stopCommand: String {
        (runAs.map { "runuser -u \($0) -- " } ?? "") + "\(binaries.path)/pg_ctl -D \(dataDirectory.path) stop"
    }

    /// - Parameter immediately: `-m immediate` (a crash, as far as the data is concerned),
    ///   for the fault tests; otherwise `-m fast`.
    public func stop(immediately: Bool = false) throws {
        _ = try Self.run(binaries.appendingPathComponent("pg_ctl"),
                         ["-D", dataDirectory.path, "-m", immediately ? "immediate" : "fast", "-w", "stop"], runAs: runAs)
        logger.info("stopped the embedded Postgres", metadata: ["postgres.data": "\(dataDirectory.path)"])
    }

    /// initdb when new; start unless running. Returns whether this call started it.
    private static func prepareAndStart(data: URL, socket: URL, binaries: URL, runAs: String?, logger: Logger) throws -> Bool {
        let files = FileManager.default
        if !files.fileExists(atPath: data.appendingPathComponent("PG_VERSION").path) {
            try files.createDirectory(at: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if let runAs { try chown(data, to: runAs) }
            let initdb = try run(binaries.appendingPathComponent("initdb"),
                                 ["-D", data.path, "--auth-local=peer", "--auth-host=reject", "-E", "UTF8", "--no-locale",
                                  "-U", try runAs ?? currentUser()],
                                 runAs: runAs)
            guard initdb.status == 0 else {
                throw EmbeddedClusterError(message: "initdb failed in \(data.path): \(initdb.output.suffix(400))")
            }
            logger.notice("created the embedded Postgres cluster", metadata: ["postgres.data": "\(data.path)"])
        }
        let pgCtl = binaries.appendingPathComponent("pg_ctl")
        let authenticationChanged = try writeAuthentication(data: data, runAs: runAs)
        if try run(pgCtl, ["-D", data.path, "status"], runAs: runAs).status == 0 {
            // A cluster made by an older LeadFlow (trust) and left running: it reads the new rules now.
            if authenticationChanged, try run(pgCtl, ["-D", data.path, "reload"], runAs: runAs).status != 0 {
                logger.warning("the running embedded Postgres did not reload its new pg_hba.conf: restart it",
                               metadata: ["postgres.data": "\(data.path)"])
            }
            return false
        }
        if socket == data {
            // The socket's folder is the data folder: only its owner (and root) may enter it.
            _ = chmod(data.path, 0o700)
        } else {
            try files.createDirectory(at: socket, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if let runAs { try chown(socket, to: runAs) }
            // A predictable name under /tmp: refuse one somebody else made.
            var status = stat()
            let owner = runAs.flatMap { getpwnam($0)?.pointee.pw_uid } ?? geteuid()
            guard stat(socket.path, &status) == 0, status.st_uid == owner, status.st_mode & 0o077 == 0 else {
                throw EmbeddedClusterError(message: "\(socket.path) belongs to another user or is open to others: remove it, or use a shorter LEADFLOW_HOME")
            }
        }
        let options = "-c listen_addresses='' -k '\(socket.path)' -c unix_socket_permissions=0700 -c port=5432"
        // Not captured: the server inherits pg_ctl's output and would hold a pipe open for its lifetime.
        let started = try run(pgCtl, ["-D", data.path, "-l", data.appendingPathComponent("server.log").path, "-w", "-t", "60",
                                      "-o", options, "start"], runAs: runAs, capture: false)
        guard started.status == 0 else {
            throw EmbeddedClusterError(message: "the embedded Postgres did not start; see \(data.appendingPathComponent("server.log").path)")
        }
        logger.info("started the embedded Postgres", metadata: ["postgres.data": "\(data.path)"])
        return true
    }

    /// Who may connect: over the socket only (no `host` line, and `listen_addresses` is
    /// empty), by peer authentication, as the cluster's own OS user, or as root mapped to it
    /// (root starts the cluster as `leadflow` and then connects as that database user).
    /// Written at every start, so a cluster initdb'd with `trust` by an older LeadFlow is
    /// upgraded. Returns whether pg_hba.conf changed.
    static func writeAuthentication(data: URL, runAs: String?) throws -> Bool {
        let user = try runAs ?? currentUser()
        let hba = """
            # Written by LeadFlow at every start of its embedded cluster: peer authentication over
            # the unix socket only. Changes here are overwritten.
            local all all peer map=leadflow

            """
        var ident = """
            # Written by LeadFlow: the OS users that may connect, and as which database user.
            leadflow "\(user)" "\(user)"

            """
        if runAs != nil { ident += "leadflow root \"\(user)\"\n" }
        let hbaFile = data.appendingPathComponent("pg_hba.conf"), identFile = data.appendingPathComponent("pg_ident.conf")
        let changed = (try? String(contentsOf: hbaFile, encoding: .utf8)) != hba
        for (file, text) in [(identFile, ident), (hbaFile, hba)] {
            do { try Data(text.utf8).write(to: file, options: .atomic) } catch {
                throw EmbeddedClusterError(message: "cannot write \(file.path): \(error.localizedDescription)")
            }
            _ = chmod(file.path, 0o600)
            if let runAs, let entry = getpwnam(runAs) { _ = Glibc.chown(file.path, entry.pointee.pw_uid, entry.pointee.pw_gid) }
        }
        return changed
    }

    /// The whole environment of initdb, pg_ctl and the server: nothing of LeadFlow's own (its
    /// app secret, DATABASE_URL, …), which any client could otherwise read in the server's
    /// `/proc/PID/environ`. C.UTF-8 and UTC so the server behaves the same on every host.
    static func serverEnvironment(runAs: String?) -> [String] {
        let user = runAs.flatMap { getpwnam($0) } ?? getpwuid(geteuid())
        let home = user.map { String(cString: $0.pointee.pw_dir) } ?? "/"
        return ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TZ=UTC",
                "HOME=\(home)"]
    }

    private func createDatabase() throws {
        let admin = try PostgresConnection(conninfo: conninfo(database: "postgres"))
        if try admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [Self.database], label: "find database").count == 0 {
            try admin.execute(raw: RawSQL(label: "create database", "CREATE DATABASE \(Self.database)"))
        }
    }

    /// This process's user name (the cluster's superuser when not root).
    static func currentUser() throws -> String {
        if let entry = getpwuid(geteuid()) { return String(cString: entry.pointee.pw_name) }
        if let user = ProcessInfo.processInfo.environment["USER"], !user.isEmpty { return user }
        throw EmbeddedClusterError(message: "this user (uid \(geteuid())) has no name in /etc/passwd: set DATABASE_URL", isConfiguration: true)
    }

    /// The newest `/usr/lib/postgresql/<major>/bin`.
    static func newestServer() -> URL? {
        let root = "/usr/lib/postgresql"
        let majors = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        return majors.last.map { URL(fileURLWithPath: "\(root)/\($0)/bin") }
    }

    static func ensureUser(_ name: String) throws {
        guard getpwnam(name) == nil else { return }
        let added = try run(URL(fileURLWithPath: "/usr/sbin/useradd"),
                            ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                            runAs: nil)
        guard added.status == 0 || getpwnam(name) != nil else {
            throw EmbeddedClusterError(message: "could not create the unprivileged user \(name) for the embedded Postgres: \(added.output)")
        }
    }

    static func chown(_ url: URL, to user: String) throws {
        guard let entry = getpwnam(user) else { throw EmbeddedClusterError(message: "no user \(user)") }
        var path = url.path
        // The parents too, up to /var/lib/leadflow, so the user can reach its folder.
        while path.hasPrefix("/var/lib/leadflow") || path == url.path {
            Glibc.chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid)
            path = (path as NSString).deletingLastPathComponent
            if path == "/var/lib" || path == "/" { break }
        }
    }

    /// FNV-1a of a path, in hex: a short, stable folder name.
    static func stableHash(_ text: String) -> String {
        var hash: UInt64 = 0xcbf29ce484222325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
        return String(hash, radix: 16)
    }

    /// Runs a program (as `runAs` through runuser when set) and returns its status and output.
    /// posix_spawn and waitpid, with the output in a temporary file: the server that
    /// `pg_ctl start` leaves behind inherits the output and would hold a pipe open, and
    /// Foundation's Process does not always notice an exit when a daemon is left behind.
    static func run(_ program: URL, _ arguments: [String], runAs: String?, capture: Bool = true) throws -> (status: Int32, output: String) {
        // Through sh, to start in "/": the server must not inherit a working folder its user cannot read.
        // `env -i` last: runuser (through PAM) adds variables of its own, and the program
        // must get exactly the clean environment.
        let clean = serverEnvironment(runAs: runAs)
        let argv = ["/bin/sh", "-c", #"cd / && exec "$0" "$@""#] + (runAs.map { ["/usr/sbin/runuser", "-u", $0, "--"] } ?? [])
            + ["/usr/bin/env", "-i"] + clean + [program.path] + arguments
        let outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("leadflow-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out")
        defer { unlink(outputFile.path) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, capture ? outputFile.path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        // sh and runuser get the clean environment too: LeadFlow's stays in LeadFlow.
        let cEnvironment = clean.map { strdup($0) } + [nil]
        defer { cEnvironment.forEach { free($0) } }
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, cEnvironment)
        guard spawned == 0 else {
            throw EmbeddedClusterError(message: "could not start \(argv[0]): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let output = capture ? ((try? String(contentsOf: outputFile, encoding: .utf8)) ?? "") : ""
        return (exitStatus, output)
    }
}

public struct EmbeddedClusterError: LeadFlowError {
    public let message: String
    /// True when the fix is the operator's (install the server, set DATABASE_URL): exit 64.
    public var isConfiguration = false
    public var code: String { "postgres.embedded" }
    public var disposition: Disposition { .fatal }
    public var description: String { message }
}

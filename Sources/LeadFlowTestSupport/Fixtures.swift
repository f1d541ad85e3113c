import Foundation
import LeadFlowCore

/// The repository's top-level folders, found from this file's own path, so tests read
/// `fixtures/` and run `.build/debug/leadflow` wherever the checkout is.
public enum Repository {
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static func fixture(_ relativePath: String) -> URL {
        root.appendingPathComponent("fixtures").appendingPathComponent(relativePath)
    }

    /// A fresh, empty folder under the system's temporary folder.
    public static func temporaryFolder(_ purpose: String = "test") throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("leadflow-\(purpose)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs a program and captures what it printed (for the CLI tests and for `tar`).
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs a program to its end. The wait happens on a thread of its own: tests run in
/// parallel on Swift's cooperative pool (two threads here), and a test blocked in waitpid
/// for seconds would hold one of them, starving every other test's awaits.
public func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                       input: Data? = nil, in directory: URL? = nil) async throws -> ProcessResult {
    try await SpawnedProcess(executable, arguments, environment: environment, input: input, in: directory).exit()
}

/// A child process started with posix_spawn and reaped with waitpid, its input and output
/// in files. Foundation's Process sometimes never notices an exit (seen with a `leadflow`
/// that left its own Postgres running, and under many children at once); a blocking
/// waitpid on the child's own pid always does, and files never fill up like a pipe.
public final class SpawnedProcess: @unchecked Sendable {
    public let processIdentifier: pid_t
    let folder: URL
    private var result: ProcessResult?

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: Data? = nil,
                in directory: URL? = nil) throws {
        folder = try Repository.temporaryFolder("spawn")
        let stdin = folder.appendingPathComponent("stdin"), stdout = folder.appendingPathComponent("stdout"),
            stderr = folder.appendingPathComponent("stderr")
        try (input ?? Data()).write(to: stdin)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin.path, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var argv = executable.hasPrefix("/") ? [executable] + arguments : ["/usr/bin/env", executable] + arguments
        // posix_spawn has no portable chdir: a shell changes folder, then becomes the program.
        if let directory { argv = ["/bin/sh", "-c", #"cd "$0" && exec "$@""#, directory.path] + argv }
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let cEnvironment = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cEnvironment.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, cEnvironment)
        guard spawned == 0 else { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: argv[0]]) }
        processIdentifier = pid
    }

    /// What it has written to stderr so far.
    public var stderrSoFar: String {
        (try? String(contentsOf: folder.appendingPathComponent("stderr"), encoding: .utf8)) ?? ""
    }

    /// Waits for the exit on a thread of its own (see `runProgram`).
    @discardableResult
    public func exit() async -> ProcessResult {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: self.wait()) }
            thread.start()
        }
    }

    /// Waits for the exit (once; later calls return the same result) and removes the files.
    @discardableResult
    public func wait() -> ProcessResult {
        if let result { return result }
        var status: Int32 = 0
        while waitpid(processIdentifier, &status, 0) == -1 && errno == EINTR {}
        let read = { (name: String) in (try? String(contentsOf: self.folder.appendingPathComponent(name), encoding: .utf8)) ?? "" }
        let exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let finished = ProcessResult(status: exitStatus, stdout: read("stdout"), stderr: read("stderr"))
        try? FileManager.default.removeItem(at: folder)
        result = finished
        return finished
    }
}

/// The built `leadflow` binary, as the CLI tests run it.
public enum LeadFlowBinary {
    public static let path = Repository.root.appendingPathComponent(".build/debug/leadflow").path

    /// This process's environment, pointed at a database, a LEADFLOW_HOME, the Graph fake
    /// (with its scenario's app id and secret) and, when given, an injected clock.
    public static func environment(databaseURL: String, home: URL, graphURL: String, now: Date?,
                                   appID: String = "1234567890", appSecret: String = "fake-app-secret") -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = databaseURL
        env["LEADFLOW_HOME"] = home.path
        env["LEADFLOW_GRAPH_URL"] = graphURL
        env["LEADFLOW_APP_ID"] = appID
        env["LEADFLOW_APP_SECRET"] = appSecret
        if let now { env["LEADFLOW_NOW"] = UTCTime.iso8601(now) }
        return env
    }

    public static func run(_ arguments: [String], environment: [String: String], input: String? = nil) async throws -> ProcessResult {
        try await runProgram(path, arguments, environment: environment, input: input.map { Data($0.utf8) })
    }
}

extension Process {
    /// Waits for the exit on a thread of its own (see `runProgram`).
    public func exited() async {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                self.waitUntilExit()
                continuation.resume()
            }
            thread.start()
        }
    }
}

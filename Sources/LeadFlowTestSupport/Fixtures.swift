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
}

public func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                       input: Data? = nil, in directory: URL? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
    process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = directory }
    let out = Pipe(), err = Pipe(), inPipe = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = inPipe
    try process.run()
    if let input { inPipe.fileHandleForWriting.write(input) }
    try inPipe.fileHandleForWriting.close()
    // Read both pipes before waiting, so a chatty child never blocks on a full pipe.
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         stdout: String(decoding: stdout, as: UTF8.self),
                         stderr: String(decoding: stderr, as: UTF8.self))
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

    public static func run(_ arguments: [String], environment: [String: String], input: String? = nil) throws -> ProcessResult {
        try runProgram(path, arguments, environment: environment, input: input.map { Data($0.utf8) })
    }
}

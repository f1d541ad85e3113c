import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// What an operator and a scheduler see of `leadflow`: the version, silence when all is
/// well under --quiet, JSON lines a collector can parse, the exit code that wins, and the
/// rules that keep a second token key from ever being made by accident.
@Suite(.serialized) struct OperationsTests {
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let leadflow: LeadFlowCLI

    init() throws {
        var pages: [GraphScenario.Page] = []
        var tokens: [GraphScenario.Token] = []
        for pageID in ["1001", "1002"] {
            pages.append(.init(id: pageID, name: "Page \(pageID)", forms: (0..<2).map { f in
                .init(id: "\(pageID)\(f)", name: "Form \(f)", generate: .init(count: 300, start: "2026-11-01T00:00:00+0000", spacingSeconds: 600))
            }))
            var token = GraphScenario.Token(token: "EAAB-ops-token-\(pageID)", pages: [pageID])
            token.type = "USER"
            tokens.append(token)
        }
        fake = try GraphFake(scenario: GraphScenario(pages: pages, tokens: tokens), now: Self.now)
        databaseURL = try TestDatabase.create("ops")
        home = try Repository.temporaryFolder("ops")
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, now: Self.now)
    }

    func connect(_ page: String) async throws -> ProcessResult {
        try await leadflow(["connect", "--instance", "acme", "--page", page, "--name", "acme-\(page)"], input: "EAAB-ops-token-\(page)\n")
    }

    var keyFile: URL { home.appendingPathComponent("token.key") }

    @Test func versionNamesTheBinaryTheSchemaAndTheGraphAPI() async throws {
        let result = try await runProgram(LeadFlowBinary.path, ["--version"])
        #expect(result.status == 0)
        let graph = Pipeline(name: "defaults").graph.apiVersion
        #expect(result.stdout.hasPrefix("leadflow "), "\(result.stdout)")
        #expect(result.stdout.contains("schema \(Migrations.latestVersion)"), "\(result.stdout)")
        #expect(result.stdout.contains("Graph API \(graph)"), "\(result.stdout)")
    }

    /// Cron mails whatever a job prints: a healthy run, and a rerun with nothing new, print nothing.
    @Test func aHealthyRunUnderQuietPrintsNothing() async throws {
        #expect(try await connect("1001").status == 0)
        #expect(try await connect("1002").status == 0)
        for _ in 0..<2 {
            let run = try await leadflow(["run", "--quiet"])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stderr.isEmpty, "\(run.stderr)")
            #expect(run.stdout.isEmpty, "\(run.stdout)")
        }
        let check = try await leadflow(["check", "--quiet"])
        #expect(check.status == 0 && check.stderr.isEmpty && check.stdout.isEmpty, "\(check.stderr)")
    }

    /// One connection goes void (a permission revoked) while a form of the other fails for
    /// good (a cursor Graph never accepts): the run exits 1, not 2, and --quiet still
    /// prints the summary that says both.
    @Test func exitOneBeatsTwoAndEveryJSONLineParses() async throws {
        #expect(try await connect("1001").status == 0)
        #expect(try await connect("1002").status == 0)
        fake.addFault(.init(path: "10010/leads", onRequest: 1, times: 1_000, kind: .graphError, fixture: "permission_200", status: 403))
        fake.addFault(.init(path: "10021/leads", onRequest: 2, times: 1_000, kind: .graphError, fixture: "invalid_cursor_100", status: 400))

        let json = try await leadflow(["run", "--log-format", "json", "--log-level", "trace"])
        #expect(json.status == 1, "\(json.stderr)")
        let records = try jsonRecords(json.stderr)
        let states = records.compactMap { ($0["metadata"] as? [String: Any])?["connection.state"] as? String }
        #expect(states.contains("void (permission_revoked)"), "\(states)")
        #expect(states.contains("partial: forms 10021 failed"), "\(states)")
        #expect(records.contains { $0["level"] as? String == "error" && $0["label"] as? String == "leadflow.summary" })

        let quiet = try await leadflow(["run", "--quiet"])
        #expect(quiet.status == 1, "\(quiet.stderr)")
        #expect(quiet.stderr.contains("void (permission_revoked)"), "\(quiet.stderr)")
        #expect(quiet.stderr.contains("partial: forms 10021 failed"), "\(quiet.stderr)")

        // Errors are records too, and so are the other commands' tables.
        for arguments in [["check", "--log-format", "json"], ["migrate", "--log-format", "json"]] {
            let result = try await leadflow(arguments, extra: ["LEADFLOW_LOG_LEVEL": "debug"])
            _ = try jsonRecords(result.stderr)
        }
        let missing = try await leadflow(["check", "--log-format", "json"], extra: ["LEADFLOW_KEY_FILE": home.appendingPathComponent("nowhere.key").path])
        #expect(missing.status == 64)
        #expect(try jsonRecords(missing.stderr).contains { $0["level"] as? String == "error" })
    }

    /// Every line is one JSON object with time, level, label, message and metadata.
    func jsonRecords(_ stderr: String) throws -> [[String: Any]] {
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(!lines.isEmpty && stderr.hasSuffix("\n"))
        return try lines.map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            #expect(Set(object.keys) == ["time", "level", "label", "message", "metadata"], "\(line)")
            #expect((object["time"] as? String).flatMap(UTCTime.parse) != nil, "\(line)")
            #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(object["level"] as? String ?? ""), "\(line)")
            #expect(object["label"] is String && object["message"] is String && object["metadata"] is [String: Any], "\(line)")
            return object
        }
    }

    /// Only the first connect into a database with no connection makes the keys (the token
    /// key and the erasure key beside it); every other command, and connect once connections
    /// exist, names the path it expected.
    @Test func aMissingTokenKeyIsMadeOnlyByTheFirstConnect() async throws {
        let erasureKeyFile = home.appendingPathComponent("erasure.key")
        for command in [["check"], ["run"], ["backfill", "--all"]] {
            let result = try await leadflow(command)
            #expect(result.status == 64, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("there is no token key at \(keyFile.path); only the first `leadflow connect` creates one"),
                    "\(command): \(result.stderr)")
        }
        // erase needs only the erasure key.
        let erase = try await leadflow(["erase", "--lead", "1"])
        #expect(erase.status == 64, "\(erase.stderr)")
        #expect(erase.stderr.contains("there is no erasure key at \(erasureKeyFile.path); only the first `leadflow connect` creates one"),
                "\(erase.stderr)")
        #expect(!FileManager.default.fileExists(atPath: keyFile.path))
        #expect(!FileManager.default.fileExists(atPath: erasureKeyFile.path))

        let first = try await connect("1001")
        #expect(first.status == 0, "\(first.stderr)")
        for file in [keyFile, erasureKeyFile] {
            let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file.path)")
        }
        // Two keys, not one derived from the other: different bytes.
        #expect(try Data(contentsOf: keyFile) != Data(contentsOf: erasureKeyFile))
        let keyID = try PostgresConnection(conninfo: databaseURL).query("SELECT token_key_id FROM connections")[0].string(0)!

        // The key is lost (another folder, a new volume): nothing makes a new one now.
        try FileManager.default.removeItem(at: keyFile)
        for result in [try await connect("1002"), try await leadflow(["run"]), try await leadflow(["check"])] {
            #expect(result.status == 64, "\(result.stderr)")
            #expect(result.stderr.contains("there is no token key at \(keyFile.path), but the database holds 1 connection sealed with key \(keyID)"),
                    "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: keyFile.path))
        let elsewhere = home.appendingPathComponent("elsewhere/token.key").path
        let named = try await leadflow(["check"], extra: ["LEADFLOW_KEY_FILE": elsewhere])
        #expect(named.status == 64 && named.stderr.contains("no token key at \(elsewhere)"), "\(named.stderr)")
    }

    /// DATABASE_URL_FILE: the URL from a file (systemd credentials, mounted secrets).
    @Test func theDatabaseURLCanComeFromAFile() async throws {
        let file = home.appendingPathComponent("database-url")
        try Data((databaseURL + "\n").utf8).write(to: file)
        var environment = leadflow.environment()
        environment.removeValue(forKey: "DATABASE_URL")
        environment["DATABASE_URL_FILE"] = file.path
        let status = try await runProgram(LeadFlowBinary.path, ["migrate"], environment: environment)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(!status.stderr.contains("own Postgres"), "\(status.stderr)")
        environment["DATABASE_URL_FILE"] = home.appendingPathComponent("absent").path
        let absent = try await runProgram(LeadFlowBinary.path, ["migrate"], environment: environment)
        #expect(absent.status == 64)
        #expect(absent.stderr.contains("DATABASE_URL_FILE names a file that cannot be read"), "\(absent.stderr)")
    }

    /// An ordinary user's default LEADFLOW_HOME is $XDG_STATE_HOME/leadflow, else
    /// ~/.local/state/leadflow, wherever the command starts (root's is /var/lib/leadflow:
    /// StateHomeTests). Run as uid 4242 through setpriv, as CI runs the suite as root.
    @Test func anOrdinaryUsersHomeIsTheirXDGStateFolder() async throws {
        try #require(getuid() == 0, "this test switches to another user: run the suite as root (CI does)")
        let userHome = try Repository.temporaryFolder("userhome")
        #expect(chown(userHome.path, 4242, 4242) == 0)
        var environment = leadflow.environment()
        environment.removeValue(forKey: "LEADFLOW_HOME")
        environment.removeValue(forKey: "XDG_STATE_HOME")
        environment["HOME"] = userHome.path
        let asUser = ["--reuid=4242", "--regid=4242", "--clear-groups", "--", LeadFlowBinary.path, "check"]
        let plain = try await runProgram("/usr/bin/setpriv", asUser, environment: environment, in: userHome)
        #expect(plain.status == 64, "\(plain.stderr)")
        #expect(plain.stderr.contains("no token key at \(userHome.path)/.local/state/leadflow/token.key"), "\(plain.stderr)")
        environment["XDG_STATE_HOME"] = userHome.appendingPathComponent("state").path
        let xdg = try await runProgram("/usr/bin/setpriv", asUser, environment: environment, in: URL(fileURLWithPath: "/"))
        #expect(xdg.stderr.contains("no token key at \(userHome.path)/state/leadflow/token.key"), "\(xdg.stderr)")
    }
}

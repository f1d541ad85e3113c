import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// Every command at trace level, with forced errors (a 500, a truncated body, invalid JSON,
/// a token that expires mid-run, a refused token, an unreachable database), then a search
/// of everything LeadFlow wrote (stdout, stderr, every archive member, every row of every
/// table, the gap reports) for the tokens, the app secret, `access_token=` and
/// `appsecret_proof`: zero hits. And what operators see (stdout, stderr) names no person:
/// no e-mail, phone or name of a lead.
@Suite(.serialized) struct SecretScanTests {
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!
    static let appSecret = "s3cr3t-app-secret-for-the-scan"
    static let tokens = ["EAAB-scan-token-1001", "EAAB-scan-token-1002", "EAAB-scan-refused-token"]

    @Test func nothingLeaksAnywhere() async throws {
        var scenario = GraphScenario(
            pages: ["1001", "1002"].map { page in
                .init(id: page, name: "Page \(page)", forms: (0..<2).map { f in
                    .init(id: "\(page)\(f)", name: "Form \(f)", generate: .init(count: 600, start: "2026-11-01T00:00:00+0000", spacingSeconds: 1_800))
                })
            },
            tokens: [.init(token: Self.tokens[0], pages: ["1001"]), .init(token: Self.tokens[1], pages: ["1002"]),
                     .init(token: Self.tokens[2], pages: [])],
            faults: [.init(path: "10010/leads", onRequest: 2, kind: .http500),
                     .init(path: "10011/leads", onRequest: 1, kind: .truncate),
                     .init(path: "10011/leads", onRequest: 3, kind: .invalidJSON),
                     .init(path: "10021/leads", onRequest: 2, times: 100, kind: .expireToken)])
        scenario.appSecret = Self.appSecret
        for index in scenario.tokens.indices { scenario.tokens[index].type = "USER" }
        let fake = try GraphFake(scenario: scenario, now: Self.now)
        let databaseURL = try TestDatabase.create("secretscan")
        let home = try Repository.temporaryFolder("secretscan")

        let cli = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, now: Self.now,
                              environment: ["LEADFLOW_APP_ID": scenario.appID, "LEADFLOW_APP_SECRET": Self.appSecret])
        var shown: [String] = []
        /// Runs at trace level, keeping everything it printed for the scan.
        func scanned(_ arguments: [String], input: String? = nil, extra: [String: String] = [:]) async throws -> ProcessResult {
            let result = try await cli(arguments + ["--log-level", "trace"], input: input, extra: extra)
            shown += [result.stdout, result.stderr]
            return result
        }

        for page in ["1001", "1002"] {
            #expect(try await scanned(["connect", "--instance", "acme", "--page", page, "--name", "acme-\(page)"], input: "EAAB-scan-token-\(page)\n").status == 0)
        }
        // A token that reaches no Page is refused: the refusal is shown, the token is not.
        #expect(try await scanned(["connect", "--instance", "acme", "--page", "1003", "--name", "acme-1003"], input: Self.tokens[2] + "\n").status == 64)
        // The run's summary as data and its metrics (in LEADFLOW_HOME, so scanned below) too.
        let metrics = home.appendingPathComponent("metrics/leadflow.prom")
        try FileManager.default.createDirectory(at: metrics.deletingLastPathComponent(), withIntermediateDirectories: true)
        let run = try await scanned(["run", "--json", "--metrics-file", metrics.path])
        #expect(run.status == 2, "the token of 1002 expires mid-run: \(run.stderr.suffix(2_000))")
        #expect(FileManager.default.fileExists(atPath: metrics.path))
        _ = try await scanned(["check"])
        _ = try await scanned(["check", "--json"])
        _ = try await scanned(["runs", "--json"])
        _ = try await scanned(["runs", "show", "1"])
        _ = try await scanned(["runs", "show", "1", "--json"])
        _ = try await scanned(["runs", "prune", "--older-than", "1", "--dry-run", "--json"])
        _ = try await scanned(["archive", "prune", "--older-than", "1", "--dry-run", "--json"])
        _ = try await scanned(["archive", "list", "--json"])
        _ = try await scanned(["archive", "verify", "--all", "--json"])
        _ = try await scanned(["status", "--json"])
        _ = try await scanned(["reminders", "--json"])
        _ = try await scanned(["notify"])
        _ = try await scanned(["notifications", "--json"])
        _ = try await scanned(["backfill", "--all"])
        _ = try await scanned(["archive", "list"])
        _ = try await scanned(["archive", "verify", "--all"])
        let reports = home.appendingPathComponent("reports")
        try FileManager.default.createDirectory(at: reports, withIntermediateDirectories: true)
        for format in ["table", "md", "csv", "json", "html"] {
            _ = try await scanned(["gaps", "--format", format, "--output", reports.appendingPathComponent("gaps.\(format)").path])
        }
        // An unreachable database with a password in its URL.
        let unreachable = "postgresql://lf:\(Self.appSecret)@127.0.0.1:1/x?connect_timeout=2"
        #expect(try await scanned(["status"], extra: ["DATABASE_URL": unreachable]).status == 1)

        // Everything written: what was shown, every file under LEADFLOW_HOME (archives
        // unpacked), every row of every table.
        var written: [(String, String)] = shown.enumerated().map { ("output \($0.offset)", $0.element) }
        let files = FileManager.default.enumerator(atPath: home.path)?.compactMap { $0 as? String } ?? []
        for path in files {
            let url = home.appendingPathComponent(path)
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true, path != "token.key" else { continue }
            if path.hasSuffix(".tar.zst") {
                let listing = try await runProgram("tar", ["--zstd", "-xOf", url.path])
                #expect(listing.status == 0)
                written.append((path, listing.stdout))
            } else {
                written.append((path, String(decoding: try Data(contentsOf: url), as: UTF8.self)))
            }
        }
        #expect(written.contains { $0.0.hasSuffix(".tar.zst") }, "archives were written and scanned")
        let db = try PostgresConnection(conninfo: databaseURL)
        for table in try db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").all.map({ try $0.string(0)! }) {
            let rows = try db.query("SELECT coalesce(string_agg(row_to_json(t)::text, E'\\n'), '') FROM \(table) t")[0].string(0) ?? ""
            written.append(("table \(table)", rows))
        }

        #expect(shown.contains { $0.contains("graph request") }, "debug logging was on")
        let needles = Self.tokens + [Self.appSecret, "access_token=", "appsecret_proof"]
        for (place, text) in written {
            for needle in needles {
                #expect(!text.contains(needle), "\(needle) found in \(place)")
            }
        }

        // Operators' screens and logs name nobody: no lead's e-mail, phone or name.
        let people = fake.allVisibleLeads().prefix(200).flatMap { lead in
            lead.fieldData.filter { ["email", "full_name", "phone_number"].contains($0.name) }.flatMap(\.values)
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        #expect(!people.isEmpty)
        for text in shown {
            #expect(!text.lowercased().contains("@example.com"), "an e-mail in what operators see")
            for value in people where text.contains(value) {
                Issue.record("personal data in what operators see: \(value.prefix(3))…")
            }
        }
    }
}

import Foundation
import LeadFlowCore
import LeadFlowTestSupport
import Testing

/// `leadflow demo` as the README's first command runs it: exit 0, the story, the status of
/// every connection, the gap report in every format as the golden files hold it, with the
/// figures the scenario makes; a second run that prints the same story; and one instance's
/// HTML page that names nobody of another.
@Suite(.serialized) struct DemoCommandTests {
    static let day = TestDays(zero: "2026-01-05T09:00:00Z")

    /// The scenario's leads of a form created in `[from, to)`.
    func leads(form: String, from: Double, to: Double) throws -> Int {
        let scenario = try GraphScenario.load(Repository.fixture("scenarios/demo.json"))
        let generator = try #require(scenario.pages.flatMap(\.forms).first { $0.id == form }?.generate)
        return generator.leads(formID: form).filter { $0.createdAt! >= Self.day(from) && $0.createdAt! < Self.day(to) }.count
    }

    @Test func theDemoTellsTheWholeStoryAndRunsAgainCleanly() async throws {
        let home = try Repository.temporaryFolder("demo")
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DATABASE_URL")
        env["LEADFLOW_HOME"] = home.path
        let first = try await runProgram(LeadFlowBinary.path, ["demo"], environment: env, in: Repository.root)
        #expect(first.status == 0, "\(first.stderr)")
        let out = first.stdout
        // The cluster's folder goes when the test does (the demo stops it at exit).
        let cluster = out.split(separator: "\n").first { $0.hasPrefix("Postgres: ") }
            .map { String($0.dropFirst("Postgres: ".count).split(separator: " ")[0]) }
        defer { if let cluster { try? FileManager.default.removeItem(atPath: cluster) } }

        // The story: each void, each reauthentication, each backfill.
        #expect(out.contains("globex: VOID (permission_revoked)"))
        #expect(out.contains("acme-main: VOID (token_expired)"))
        #expect(out.contains("initech: VOID (token_invalidated)"))
        #expect(out.contains("acme-main: backfill of void period 2:"))
        #expect(out.contains("acme-events: reminder (reauthentication due)"))

        // The status table lists every connection.
        for label in ["acme-main", "acme-events", "globex", "initech"] {
            #expect(out.contains(label), "\(label) missing from the status")
        }
        #expect(out.contains("void (token_expired)  2026-05-20T09:00:00Z"))
        #expect(out.contains("every one verified against its manifest"))

        // The gap report it ends with is the golden one, in the terminal and in HTML.
        let report = try #require(out.range(of: "== Gap report, ")).lowerBound
        let reportEnd = try #require(out.range(of: "Gap report (HTML): ")).lowerBound
        let table = String(out[out.index(report, offsetBy: 3)..<reportEnd])
        try checkGolden("demo/gap-report.table", table)
        let htmlLine = try #require(out.split(separator: "\n").first { $0.hasPrefix("Gap report (HTML): ") })
        let html = try String(contentsOfFile: String(htmlLine.dropFirst("Gap report (HTML): ".count)), encoding: .utf8)
        try checkGolden("demo/gap-report.html", html)
        // One timeline per connection, one row per period; self-contained.
        #expect(html.components(separatedBy: "<svg class=\"timeline\"").count - 1 == 4)
        #expect(html.components(separatedBy: "<tr class=\"period ").count - 1 == 4)
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("href="))

        // Again, leaving its Postgres running: the same story, from nothing (the timing line
        // and what --keep adds aside); then the other formats, read by `leadflow gaps`.
        let second = try await runProgram(LeadFlowBinary.path, ["demo", "--keep"], environment: env, in: Repository.root)
        #expect(second.status == 0, "\(second.stderr)")
        let lines = second.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let psql = try #require(lines.first { $0.hasPrefix("Postgres is still running: psql \"") })
        let conninfo = String(psql.dropFirst("Postgres is still running: psql \"".count).dropLast())
        let stop = try #require(lines.first { $0.hasPrefix("Stop it with: ") }).dropFirst("Stop it with: ".count)
        defer { _ = try? SpawnedProcess("/bin/sh", ["-c", String(stop)]).wait() }
        func story(_ text: String) -> [Substring] {
            text.split(separator: "\n").filter { !$0.contains(" Graph requests, in ") && !$0.hasPrefix("Postgres is still running") && !$0.hasPrefix("Stop it with") }
        }
        #expect(story(second.stdout) == story(out))

        var gapsEnv = env
        gapsEnv["DATABASE_URL"] = conninfo
        gapsEnv["LEADFLOW_NOW"] = "2026-07-03T21:00:00Z"
        func gaps(_ arguments: [String]) async throws -> String {
            let result = try await runProgram(LeadFlowBinary.path, ["gaps"] + arguments, environment: gapsEnv, in: Repository.root)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout
        }
        #expect(try await gaps([]) == table, "leadflow gaps prints the report the demo ended with")
        for format in ["md", "csv", "json"] {
            try checkGolden("demo/gap-report.\(format)", try await gaps(["--format", format]))
        }

        // The figures, from the scenario's own leads.
        let json = try JSONSerialization.jsonObject(with: Data(try await gaps(["--format", "json"]).utf8)) as! [String: Any]
        #expect(json["schema_version"] as? Int == 2)
        let connections = json["connections"] as! [[String: Any]]
        func periods(_ label: String) throws -> [[String: Any]] {
            try #require(connections.first { $0["label"] as? String == label }?["void_periods"] as? [[String: Any]])
        }
        let globex = try periods("globex")
        #expect(globex.map { $0["number"] as? Int } == [1, 2], "numbered per connection, not globally")
        #expect(globex[0]["cause"] as? String == "permission_revoked")
        #expect(globex[0]["recovered"] as? Int == (try leads(form: "20011", from: 40.5, to: 45)))
        #expect(globex[1]["status"] as? String == "open")
        #expect(globex[1]["recover_by"] as? String == "2026-08-18T09:00:00Z", "20 May + Facebook's 90 days")
        let lost = try leads(form: "10011", from: 90, to: 91.5)
        let acmeMain = try periods("acme-main")
        #expect(acmeMain[0]["recovered"] as? Int == (try leads(form: "10011", from: 90, to: 97) + leads(form: "10012", from: 90, to: 97) - lost))
        #expect(acmeMain[0]["lost"] as? Int == lost)
        #expect(acmeMain[0]["status"] as? String == "partly_lost")
        #expect(try periods("initech")[0]["cause"] as? String == "token_invalidated")
        let headlines = (json["instances"] as! [[String: Any]]).compactMap { $0["headline"] as? String }
        #expect(headlines == [
            "acme: Priya Shah must reauthenticate Acme Analytics by 11 Jul (7 days left) to keep its leads coming.",
            "globex: No leads from Globex Software since 20 May (44 days). About 619 leads are waiting in Facebook; the first are lost "
                + "on 18 Aug unless Ana Ruiz reauthenticates Globex Software.",
            "initech: all connections healthy.",
        ])

        // One instance's page names it and its people, and nobody of another instance.
        for instance in ["acme", "globex", "initech"] {
            let file = home.appendingPathComponent("\(instance).html")
            _ = try await gaps(["--instance", instance, "--format", "html", "--output", file.path])
            let page = try String(contentsOf: file, encoding: .utf8)
            for c in connections {
                let names = [c["instance"], c["label"], c["page_name"], (c["authenticator"] as? [String: Any])?["name"]].compactMap { $0 as? String }
                for name in names where c["instance"] as? String == instance {
                    #expect(page.contains(name), "\(name) missing from \(instance)'s page")
                }
                for name in names where c["instance"] as? String != instance {
                    #expect(!page.contains(name), "\(name) of another instance on \(instance)'s page")
                }
            }
        }
    }

    /// The report compared with `fixtures/golden/`; LEADFLOW_UPDATE_GOLDEN=1 rewrites it.
    func checkGolden(_ name: String, _ text: String) throws {
        if let difference = try Golden.difference(text, from: name) { Issue.record("gap report \(difference)") }
    }

    /// The binary alone, copied outside the checkout (as install.sh and the Dockerfile
    /// ship it), plays the demo from its built-in scenario: nothing is read from the
    /// source tree. Runs are spaced far apart to keep it quick; the story above is the full one.
    @Test func anInstalledBinaryNeedsNoSourceTree() async throws {
        let folder = try Repository.temporaryFolder("installed")
        defer { try? FileManager.default.removeItem(at: folder) }
        let binary = folder.appendingPathComponent("bin/leadflow")
        try FileManager.default.createDirectory(at: binary.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: LeadFlowBinary.path, toPath: binary.path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: binary.deletingLastPathComponent().path) == ["leadflow"])
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DATABASE_URL")
        env["LEADFLOW_HOME"] = folder.appendingPathComponent("home").path

        let version = try await runProgram(binary.path, ["--version"], environment: env, in: folder)
        #expect(version.status == 0 && version.stdout.hasPrefix("leadflow "), "\(version.stderr)")
        let demo = try await runProgram(binary.path, ["demo", "--run-every-hours", "2000"], environment: env, in: folder)
        let cluster = demo.stdout.split(separator: "\n").first { $0.hasPrefix("Postgres: ") }
            .map { String($0.dropFirst("Postgres: ".count).split(separator: " ")[0]) }
        defer { if let cluster { try? FileManager.default.removeItem(atPath: cluster) } }
        #expect(demo.status == 0, "\(demo.stderr)")
        #expect(demo.stdout.hasPrefix("LeadFlow demo: the built-in scenario"), "\(demo.stdout)")
        #expect(demo.stdout.contains("The Graph fake plays 4 Pages with 6 forms"), "\(demo.stdout)")
        #expect(demo.stdout.contains("every one verified against its manifest"), "\(demo.stdout)")
    }
}

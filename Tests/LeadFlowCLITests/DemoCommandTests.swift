import Foundation
import LeadFlowCore
import LeadFlowTestSupport
import Testing

/// `leadflow demo` as the README's first command runs it: exit 0, the story, the status of
/// every connection, the gap report with the periods the scenario makes, the HTML report;
/// and a second run that prints the same story.
@Suite(.serialized) struct DemoCommandTests {
    static let day0 = UTCTime.parse("2026-01-05T09:00:00Z")!
    static func day(_ n: Double) -> Date { day0.addingTimeInterval(n * 86_400) }

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

        // The gap report: the periods the scenario makes, with counts from the scenario's leads.
        let globexRecovered = try leads(form: "20011", from: 40.5, to: 45)
        #expect(out.contains("1       permission_revoked  2026-02-14T21:00:00Z  2026-02-19T09:00:00Z  4 d 12 h   \(globexRecovered)"))
        let lost = try leads(form: "10011", from: 90, to: 91.5)
        let acmeRecovered = try leads(form: "10011", from: 90, to: 97) + leads(form: "10012", from: 90, to: 97) - lost
        #expect(out.contains("2       token_expired  2026-04-05T09:00:00Z  2026-04-12T09:00:00Z  7 d 0 h   \(acmeRecovered)        0        \(lost)    partly_lost"))
        #expect(out.contains("token_invalidated  2026-05-05T21:00:00Z  2026-05-11T09:00:00Z"))
        #expect(out.contains("open"))
        #expect(out.contains("every one verified against its manifest"))

        // The HTML report: one timeline per connection, one row per period.
        let htmlLine = try #require(out.split(separator: "\n").first { $0.hasPrefix("Gap report (HTML): ") })
        let html = try String(contentsOfFile: String(htmlLine.dropFirst("Gap report (HTML): ".count)), encoding: .utf8)
        #expect(html.components(separatedBy: "<svg class=\"timeline\"").count - 1 == 4)
        #expect(html.components(separatedBy: "<tr class=\"period ").count - 1 == 4)

        // Again: the same story, from nothing (the timing line aside).
        let second = try await runProgram(LeadFlowBinary.path, ["demo"], environment: env, in: Repository.root)
        #expect(second.status == 0, "\(second.stderr)")
        func story(_ text: String) -> [Substring] { text.split(separator: "\n").filter { !$0.contains(" Graph requests, in ") } }
        #expect(story(second.stdout) == story(out))
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

import ArgumentParser
import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowDemo
import LeadFlowPostgres
import LeadFlowStore
import Logging

extension LeadFlow {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The whole story in one command: its own Postgres, the Graph fake, ~180 days in under a minute.",
            discussion: """
                Starts LeadFlow's own Postgres (a fresh `leadflow_demo` database; DATABASE_URL is never touched) and the Graph fake playing its built-in scenario (fixtures/scenarios/demo.json, compiled in): three instances, four Pages, six forms, about 12,000 leads; a token that expires, a permission revoked, a password change, reauthentications, and a void period during which Facebook expires some leads. It walks the injected clock through the days with a scheduled run each day (reminders, void periods, automatic backfills), then prints the status table and the gap report, writes gap-report.html, and says where the archives are. It runs again cleanly: each run starts from nothing.

                Examples:
                  leadflow demo
                  leadflow demo --keep     # leave its Postgres running, to look around
                """
        )

        @OptionGroup var common: CommonOptions

        @Option(help: "A scenario file to play instead of the built-in one (fixtures/scenarios/demo.json): the fake's Pages and tokens, and the demo's plan.")
        var scenario: String?

        @Option(help: "Hours between scheduled runs (default: the scenario's, 24).")
        var runEveryHours: Double?

        @Flag(help: "Leave the demo's Postgres running at the end, and say how to reach and stop it.")
        var keep = false

        func validate() throws {
            if let runEveryHours, !(runEveryHours > 0) { throw ValidationError("--run-every-hours must be more than 0.") }
        }

        func run() async throws {
            common.bootstrapLogging()
            let started = ContinuousClock.now
            let environment = Environment()
            do {
                var (graphScenario, plan) = try scenario.map { try DemoPlan.load(URL(fileURLWithPath: $0)) } ?? DemoPlan.builtIn()
                if let runEveryHours { plan.runEveryHours = runEveryHours }
                let home = try environment.home.standardizedFileURL.absoluteURL
                let demoHome = home.appendingPathComponent("demo")
                try? FileManager.default.removeItem(at: demoHome)
                try FileManager.default.createDirectory(at: demoHome, withIntermediateDirectories: true)

                say("LeadFlow demo: \(scenario ?? DemoPlan.builtInName)")
                if (try? environment.databaseURL()) != nil { say("(DATABASE_URL is left alone: the demo uses its own Postgres)") }
                let cluster = try EmbeddedCluster.start(home: home, serverBinaries: environment.postgresBinaries)
                cluster.keepRunning = keep
                try cluster.recreateDatabase("leadflow_demo")
                let conninfo = cluster.conninfo(database: "leadflow_demo")
                let database = try PostgresConnection(conninfo: conninfo)
                try Migrator().migrate(database, now: plan.start)
                let session = try await PostgresSession.connect(conninfo: conninfo)
                say("Postgres: \(cluster.dataDirectory.path) (database leadflow_demo)\n")

                let outcome = try await DemoRunner(scenario: graphScenario, plan: plan, database: session, home: demoHome).run(say: say)

                say("\n== Status on \(UTCTime.iso8601(outcome.now)) ==\n")
                say(Status.table(try await Status.rows(session, policy: outcome.pipeline.tokenPolicy, now: outcome.now)))
                let report = GapReport.build(try GapStore(database).facts(instance: nil, now: outcome.now),
                                             policy: outcome.pipeline.tokenPolicy, now: outcome.now)
                say("== " + report.render(.table))
                let html = demoHome.appendingPathComponent("gap-report.html")
                try Data(report.render(.html).utf8).write(to: html, options: .atomic)
                say("Gap report (HTML): \(html.path)")
                // Every archive read back and checked against its manifest and recorded hash, as `archive verify --all` does.
                var bytes = 0, verified = 0
                for row in try database.query("SELECT path, sha256, bytes FROM archives ORDER BY id").all {
                    try ArchiveVerifier.verify(demoHome.appendingPathComponent(try row.string(0)!), recordedSHA256: try row.string(1))
                    verified += 1
                    bytes += try row.int(2) ?? 0
                }
                say("Archives: \(demoHome.appendingPathComponent("archives").path): \(verified) tar.zst files, "
                    + String(format: "%.1f MB", Double(bytes) / 1_048_576) + ", every one verified against its manifest")
                let elapsed = (ContinuousClock.now - started).timeInterval
                say(String(format: "%d runs, %d leads loaded, %d Graph requests, in %.1f s.", outcome.runs, outcome.leadsLoaded,
                           outcome.graphRequests, elapsed))
                if keep {
                    say("\nPostgres is still running: psql \"\(conninfo)\"\nStop it with: \(cluster.stopCommand)")
                }
            } catch {
                throw ExitStatus.report(error)
            }
        }
    }
}

/// The demo's story goes to stdout: it is the output, not a diagnostic.
private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line.hasSuffix("\n") ? line : line + "\n").utf8))
}

import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStages

extension LeadFlow {
    struct Backfill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-read the void periods of reauthenticated connections (or a given window).",
            discussion: """
                For each chosen connection that is healthy again, every form is read over each void period awaiting a backfill, widened by the pipeline's overlap on both sides, through the same extract → archive → transform → load path as a run (runs.kind = backfill). A period is marked backfilled only when every form's window committed; a killed backfill resumes after the windows it committed. The scheduled watermarks are never moved. With --since (and --until, default now) the given window is read instead, for every form, and no period is marked.

                `leadflow run` does this by itself for freshly reauthenticated connections (pipeline: backfill.automatic).

                Exit codes, and what to do (docs/operations.md):
                  0   done.
                  1   something failed (a form's window, a connection, the database); it wins over 2. Run the same backfill again: it resumes after the windows it committed.
                  2   finished, but a connection is void again (reauthenticate it) or leads were rejected (`leadflow gaps`).
                  64  bad input or configuration.

                Examples:
                  leadflow backfill --all
                  leadflow backfill --connection acme-main \\
                      --since 2026-03-01T00:00:00Z --until 2026-03-15T00:00:00Z
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption
        @OptionGroup var workerOptions: WorkerOptions
        @OptionGroup var metrics: MetricsOptions

        @Flag(help: "Also print the summary as JSON on stdout (the shape of `run --json`).")
        var json = false

        @Option(name: .customLong("connection"), help: "A connection's label (repeatable).")
        var labels: [String] = []

        @Flag(help: "Every connection (shared with other workers running `backfill --all`).")
        var all = false

        @Option(help: "Read this window instead of the void periods: its start (ISO 8601).")
        var since: String?

        @Option(help: "The window's end (ISO 8601; default now).")
        var until: String?

        func validate() throws {
            guard all != !labels.isEmpty else { throw ValidationError("Give --connection LABEL or --all (one of them).") }
            if until != nil && since == nil { throw ValidationError("--until needs --since.") }
            for (name, value) in [("--since", since), ("--until", until)] {
                if let value, UTCTime.parse(value) == nil { throw ValidationError("\(name) is not an ISO 8601 instant: \(value)") }
            }
        }

        func run() async throws {
            common.bootstrapLogging()
            let started = ContinuousClock.now
            let summary: RunStage.Summary
            var opened: Wiring?
            do {
                let pipeline = try pipelineOption.load()
                let wiring = try await Wiring(pipeline: pipeline)
                opened = wiring
                var window: LeadWindow?
                if let since = since.flatMap(UTCTime.parse) {
                    let end = min(until.flatMap(UTCTime.parse) ?? wiring.now, wiring.now)
                    guard since < end else { throw ValidationError("--since must be before --until and before now.") }
                    window = LeadWindow(from: since, to: end)
                }
                summary = try await wiring.runStage(workers: workerOptions.settings(pipeline)).backfill(labels: all ? nil : labels, window: window, now: wiring.now,
                                                               progress: progressReporter(label: "leadflow.backfill"))
            } catch {
                let status = ExitStatus.report(error)
                if let opened { await deliverNotifications(opened) }
                await metrics.publish(kind: .backfill, summary: nil, exitCode: status.rawValue, started: started, wiring: opened,
                                      workerID: workerOptions.workerID)
                throw status
            }
            try await finish(summary, notifying: opened, json: json, metrics: metrics, started: started, workerID: workerOptions.workerID)
        }
    }
}

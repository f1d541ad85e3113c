import ArgumentParser
import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowPipelineFile
import LeadFlowStages
import LeadFlowStore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `--pipeline`, shared by the commands that run stages.
struct PipelineOption: ParsableArguments {
    static let defaultPath = "pipelines/facebook-leads.yml"

    @Option(name: .customLong("pipeline"), help: "The pipeline file (default \(PipelineOption.defaultPath); built-in defaults when that file is absent).")
    var path: String?

    func load() throws -> Pipeline {
        if let path { return try PipelineFile.load(URL(fileURLWithPath: path)) }
        guard FileManager.default.fileExists(atPath: Self.defaultPath) else { return Pipeline(name: "built-in defaults") }
        return try PipelineFile.load(URL(fileURLWithPath: Self.defaultPath))
    }
}

extension LeadFlow {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The scheduled batch: every connection, all stages.",
            discussion: """
                For each connection: preflight (token age, debug_token, permissions, lead access), extract every form's window [watermark − overlap, now), archive the raw pages (tar + zstd, verified) before loading, transform into the Integrate lead schema, and load (COPY into staging, upsert by lead id, watermark in the same transaction). A void connection is skipped and its void period opened; a rerun never duplicates a lead. Start it from cron, a systemd timer or a Kubernetes CronJob (README).

                Exit codes: 0 all connections healthy and loaded; 2 finished, but a connection is void or leads were rejected; 64 bad input or configuration; 1 any other failure.

                Several processes, on one host or many, may run at once against one Postgres: each claims connections from the round's work queue (FOR UPDATE SKIP LOCKED), renews its lease while it works, and a dead worker's connections go to the others when its lease ends. A worker with nothing left to claim waits while others still hold connections of the round.

                Examples:
                  leadflow run --pipeline pipelines/facebook-leads.yml
                  leadflow run --worker-id host-a --connections-at-once 8 --lease-seconds 120
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption
        @OptionGroup var workerOptions: WorkerOptions

        func run() async throws {
            common.bootstrapLogging()
            let summary: RunStage.Summary
            var opened: Wiring?
            do {
                let pipeline = try pipelineOption.load()
                let wiring = try await Wiring(pipeline: pipeline)
                opened = wiring
                summary = try await wiring.runStage(workers: workerOptions.settings(pipeline)).run(now: wiring.now, progress: progressReporter(label: "leadflow.run"))
            } catch {
                let status = ExitStatus.report(error)
                // What the run recorded before it failed (a void, say) is still told.
                if let opened { await deliverNotifications(opened) }
                throw status
            }
            try await finish(summary, notifying: opened)
        }
    }
}

/// Progress lines: plain on a terminal, log records (with a timestamp) under a scheduler.
func progressReporter(label: String) -> @Sendable (String) -> Void {
    let onTerminal = isatty(STDERR_FILENO) == 1
    let logger = Logger(label: label)
    return { step in
        if onTerminal { printErr("  \(step)\n") } else { logger.notice("\(step)") }
    }
}

/// Prints the summary, delivers the notifications (whose outcome never changes the exit
/// code), then exits the way a scheduler acts on: 2 for gaps, 1 for failures.
func finish(_ summary: RunStage.Summary, notifying wiring: Wiring?) async throws {
    printSummary(summary)
    if let wiring { await deliverNotifications(wiring) }
    if summary.hasGaps { throw ExitStatus.finishedWithGaps }
    if summary.hasFailures { throw ExitStatus.failure }
}

/// The table of a run or backfill, and where the time went, on stderr.
func printSummary(_ summary: RunStage.Summary) {
    let runs = summary.backfillRunID.map { "run \(summary.runID) (backfill run \($0))" } ?? "run \(summary.runID)"
    printErr("\(runs):\n" + TextTable.render(
        ["connection", "job", "state", "pages", "new", "updated", "unchanged", "rejected"],
        summary.connections.map { connection in
            let state: String
            switch connection.state {
            case .loaded: state = "loaded"
            case .void(let cause): state = "void (\(cause.rawValue))"
            case .skipped(let reason): state = "skipped: \(reason)"
            case .partial(let forms): state = "partial: forms \(forms.joined(separator: ", ")) failed"
            case .idle(let reason): state = reason
            }
            let c = connection.counts
            return [connection.label, connection.job.description, state, String(connection.pages), String(c.inserted), String(c.updated),
                    String(c.unchanged), String(c.rejected)]
        }))
    let t = summary.timings
    printErr(String(format: "stages: preflight %.2f s, extract %.2f s, archive %.2f s, load %.2f s; peak memory %.1f MB\n",
                    t.preflight, t.extract, t.archive, t.load, peakResidentMegabytes()))
}

/// This process's peak resident memory so far (VmHWM), in MB; 0 where /proc is missing.
func peakResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kilobytes / 1024
}

/// How this process works beside others on the same Postgres (`run`, `backfill --all`).
struct WorkerOptions: ParsableArguments {
    @Option(name: .customLong("worker-id"), help: "This worker's name among those sharing the database (default: host:pid).")
    var workerID: String?

    @Option(name: .customLong("lease-seconds"),
            help: "A claim on a connection not renewed for this long goes to another worker (default: the pipeline's workers.lease_seconds, 120).")
    var leaseSeconds: Int?

    @Option(name: .customLong("connections-at-once"),
            help: "Connections this process works on at once, one Postgres session each (default: the pipeline's workers.connections_at_once, 4).")
    var connectionsAtOnce: Int?

    func validate() throws {
        if let leaseSeconds, !(5...86_400).contains(leaseSeconds) { throw ValidationError("--lease-seconds must be from 5 to 86400.") }
        if let connectionsAtOnce, !(1...64).contains(connectionsAtOnce) { throw ValidationError("--connections-at-once must be from 1 to 64.") }
        if let workerID, workerID.isEmpty || workerID.count > 200 { throw ValidationError("--worker-id must be 1 to 200 characters.") }
    }

    func settings(_ pipeline: Pipeline) -> WorkerSettings {
        WorkerSettings(workerID: workerID ?? WorkerSettings.defaultWorkerID(),
                       lease: .seconds(leaseSeconds ?? pipeline.workers.leaseSeconds),
                       connectionsAtOnce: connectionsAtOnce ?? pipeline.workers.connectionsAtOnce)
    }
}

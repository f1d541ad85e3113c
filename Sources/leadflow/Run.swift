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
                For each connection: preflight (token age, debug_token, permissions, lead access), extract every form's window [watermark − overlap, now), archive the raw pages (tar + zstd, verified) before loading, transform into the Integrate lead schema, and load (COPY into staging, upsert by lead id, watermark in the same transaction). A void connection is skipped and its void period opened; a rerun never duplicates a lead. Start it from cron, a systemd timer or a Kubernetes CronJob (docs/operations.md).

                Exit codes, and what to do (docs/operations.md):
                  0   every connection healthy and loaded: nothing.
                  1   something failed (a form's window, a connection skipped, the database, Graph past its retries); it wins over 2, so a failure never hides behind a void connection. Read the summary; the next run retries, and nothing half-done is visible. Alert if it repeats.
                  2   finished, but a person must act: a connection is void (reauthenticate it with `leadflow connect`; `leadflow check` says why) or leads were rejected (`leadflow gaps`). Rerunning does not fix it.
                  64  bad input or configuration (environment, pipeline file, missing key file): fix the deployment.
                Under cron use --quiet: a healthy run prints nothing, so cron mails only for 1, 2 or 64. Under systemd, any non-zero exit fails the unit and starts its OnFailure= unit (deploy/systemd); the exit code is in `systemctl show -p ExecMainStatus leadflow-run`. Under Kubernetes a non-zero exit fails the Job (backoffLimit 0: the next schedule is the retry); alert on kube_job_status_failed.

                Several processes, on one host or many, may run at once against one Postgres: each claims connections from the round's work queue (FOR UPDATE SKIP LOCKED), renews its lease while it works, and a dead worker's connections go to the others when its lease ends. A worker with nothing left to claim waits while others still hold connections of the round.

                After every run, --metrics-file and --pushgateway publish Prometheus metrics (docs/metrics.md): the last run's and last success's time, seconds per stage, leads per instance, connections by state, leads waiting in Facebook, pending notifications, Graph requests, errors and rate-limit waits, archive bytes. Writing or pushing them never changes the exit code; a failure to is said on stderr.

                A pass that read nothing the tables do not already hold (nothing new, or only the overlap's re-reads of leads loaded before, byte for byte) writes no archive.

                Examples:
                  leadflow run --pipeline pipelines/facebook-leads.yml
                  leadflow run --quiet --metrics-file /var/lib/node_exporter/textfile/leadflow.prom
                  leadflow run --json | jq '.totals'
                  leadflow run --worker-id host-a --connections-at-once 8 --lease-seconds 120
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption
        @OptionGroup var workerOptions: WorkerOptions
        @OptionGroup var metrics: MetricsOptions

        @Flag(help: "Also print the run's summary as JSON on stdout: per connection and form, leads, Graph requests and errors, seconds per stage, the archive.")
        var json = false

        func run() async throws {
            common.bootstrapLogging()
            let started = ContinuousClock.now
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
                await metrics.publish(kind: .scheduled, summary: nil, exitCode: status.rawValue, started: started, wiring: opened,
                                      workerID: workerOptions.workerID)
                throw status
            }
            try await finish(summary, notifying: opened, json: json, metrics: metrics, started: started, workerID: workerOptions.workerID)
        }
    }
}

/// Progress lines: plain on a terminal, log records (with a timestamp) under a scheduler or
/// `--log-format json`; nothing under `--quiet`.
func progressReporter(label: String) -> @Sendable (String) -> Void {
    let plain = isatty(STDERR_FILENO) == 1 && Output.settings.format == .text
    let logger = Logger(label: label)
    return { step in
        if plain { Output.say("  \(step)") } else { logger.notice("\(step)") }
    }
}

/// Prints the summary, delivers the notifications (whose outcome never changes the exit
/// code), then exits the way a scheduler acts on: 1 when anything failed (a form, a
/// connection), even if a connection is also void, since a failure is what a rerun or a
/// person must look at first; else 2 when a connection is void or leads were rejected.
/// Under `--quiet` a run that exits 0 prints nothing at all.
/// With `--json`, the summary also goes to stdout as data; the metrics follow the
/// notifications, so the pending count they report is what the run leaves.
func finish(_ summary: RunStage.Summary, notifying wiring: Wiring?, json: Bool, metrics: MetricsOptions,
            started: ContinuousClock.Instant, workerID: String?) async throws {
    printSummary(summary, level: summary.hasFailures ? .error : summary.hasGaps ? .warning : .notice)
    let status: ExitCode? = summary.hasFailures ? ExitStatus.failure : summary.hasGaps ? ExitStatus.finishedWithGaps : nil
    if json { try printJSON(RunSummaryJSON(summary, exitCode: status?.rawValue ?? 0)) }
    if let wiring { await deliverNotifications(wiring) }
    await metrics.publish(kind: summary.kind, summary: summary, exitCode: status?.rawValue ?? 0, started: started, wiring: wiring,
                          workerID: workerID)
    if let status { throw status }
}

/// The table of a run or backfill, and where the time went, on stderr (under
/// `--log-format json`: one record per connection and one for the stages).
func printSummary(_ summary: RunStage.Summary, level: Logger.Level) {
    let runs = summary.backfillRunID.map { "run \(summary.runID) (backfill run \($0))" } ?? "run \(summary.runID)"
    let rows = summary.connections.map { connection -> [String] in
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
    }
    let t = summary.timings
    let stages = String(format: "stages: preflight %.2f s, extract %.2f s, archive %.2f s, load %.2f s; peak memory %.1f MB",
                        t.preflight, t.extract, t.archive, t.load, peakResidentMegabytes())
    let columns = ["connection", "job", "state", "pages", "new", "updated", "unchanged", "rejected"]
    switch Output.settings.format {
    case .text:
        Output.say("\(runs):\n" + TextTable.render(columns, rows), level: level)
        Output.say(stages, level: level)
    case .json:
        var runMetadata: Logger.Metadata = ["run.id": "\(summary.runID)"]
        if let backfill = summary.backfillRunID { runMetadata["run.backfill_id"] = "\(backfill)" }
        for row in rows {
            var metadata = runMetadata
            for (column, value) in zip(columns, row) { metadata[column == "connection" ? "connection.label" : "connection.\(column)"] = "\(value)" }
            Output.say("\(runs): \(row[0]) \(row[2])", level: level, label: "leadflow.summary", metadata: metadata)
        }
        runMetadata["stage.preflight_seconds"] = "\(t.preflight)"
        runMetadata["stage.extract_seconds"] = "\(t.extract)"
        runMetadata["stage.archive_seconds"] = "\(t.archive)"
        runMetadata["stage.load_seconds"] = "\(t.load)"
        Output.say("\(runs): \(stages)", level: level, label: "leadflow.summary", metadata: runMetadata)
    }
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
            help: "Connections this process works on at once, one Postgres session each (default: the pipeline's workers.connections_at_once, 8).")
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

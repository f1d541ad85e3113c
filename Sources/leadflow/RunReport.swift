import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowHTTP
import LeadFlowStages
import LeadFlowStore

/// `--json` answers on stdout: sorted keys, one document, a trailing newline.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value) + Data("\n".utf8))
}

/// `--metrics-file` and `--pushgateway`, shared by `run` and `backfill`.
struct MetricsOptions: ParsableArguments {
    @Option(name: .customLong("metrics-file"),
            help: "After the run, write Prometheus metrics to this file (atomically, mode 0644) for node_exporter's textfile collector, e.g. /var/lib/node_exporter/textfile/leadflow.prom.")
    var file: String?

    @Option(name: .customLong("pushgateway"),
            help: "After the run, PUT the same metrics to this Prometheus Pushgateway (http[s]://host:port), job leadflow.")
    var gateway: String?

    func validate() throws {
        if let file, file.isEmpty || file.hasSuffix("/") { throw ValidationError("--metrics-file must name a file: \(file)") }
        if let gateway, !(gateway.hasPrefix("http://") || gateway.hasPrefix("https://")) || gateway.contains("?") {
            throw ValidationError("--pushgateway must be an http:// or https:// URL without a query")
        }
    }

    var wanted: Bool { file != nil || gateway != nil }

    /// Renders the run's metrics and writes and pushes them. A failure here is said (even
    /// under --quiet) and never changes the exit code: the leads are what the code is about,
    /// and a missing push shows in Prometheus as a stale `push_time_seconds`.
    func publish(kind: RunKind, summary: RunStage.Summary?, exitCode: Int32, started: ContinuousClock.Instant, wiring: Wiring?,
                 workerID: String?) async {
        guard wanted else { return }
        let seconds = (ContinuousClock.now - started).timeInterval
        var facts: MetricsFacts?
        var report: GapReport?
        if let wiring {
            do {
                facts = try await MetricsStore(wiring.database).facts(runID: summary?.runID, kind: kind)
                let now = wiring.now
                let gapFacts = try await wiring.database.run { try GapStore($0).facts(instance: nil, now: now) }
                report = GapReport.build(gapFacts, policy: wiring.pipeline.tokenPolicy, now: now)
            } catch {
                Output.problem("leadflow: metrics without the database's figures: \((error as? any LeadFlowError)?.description ?? "\(error)")")
            }
        }
        let text = RunMetrics.text(kind: kind, summary: summary, exitCode: exitCode, seconds: seconds, now: wiring?.now ?? Date(),
                                   facts: facts, report: report).render()
        if let file {
            do {
                try MetricsPublisher(transport: nil).write(text, to: URL(fileURLWithPath: file))
            } catch {
                Output.problem("leadflow: \((error as? any LeadFlowError)?.description ?? "\(error)")")
            }
        }
        if let gateway {
            do {
                let client = try CurlHTTPClient(configuration: .init(maxConcurrentTransfers: 1, maxCachedConnections: 1))
                // `backfill` and each named worker get a group of their own, so they do not
                // replace each other's metrics; the grouping labels are none the metrics carry.
                var grouping: [(name: String, value: String)] = []
                if kind != .scheduled { grouping.append(("command", kind.rawValue)) }
                if let workerID { grouping.append(("worker", workerID)) }
                try await MetricsPublisher(transport: client).push(text, to: gateway, job: "leadflow", grouping: grouping)
            } catch {
                Output.problem("leadflow: \(URLRedaction.redact((error as? any LeadFlowError)?.description ?? "\(error)"))")
            }
        }
    }
}

/// The `run` and `backfill` summary as `--json` prints it on stdout: the run, totals, and
/// per connection pass and form what was read, loaded, asked of Graph and archived.
struct RunSummaryJSON: Encodable {
    struct Seconds: Encodable {
        let preflight, extract, archive, load: Double
        init(_ t: RunStage.Timings) { (preflight, extract, archive, load) = (t.preflight, t.extract, t.archive, t.load) }
    }
    struct Archive: Encodable {
        let id: Int64
        let path: String
        let bytes: Int64
    }
    struct Form: Encodable {
        let form_id: String
        let window_from, window_to: String?
        let pages, leads, inserted, updated, unchanged, rejected, graph_requests: Int
        let graph_errors: [String: Int]
        let error_code, error: String?
    }
    struct Pass: Encodable {
        let connection: String
        let instance: String?
        let job, state: String
        let detail: String?
        let pages, inserted, updated, unchanged, rejected, erased, late, missing, graph_requests, rate_limit_waits: Int
        let graph_errors: [String: Int]
        let rate_limit_wait_seconds: Double
        let seconds: Seconds
        let archive: Archive?
        let forms: [Form]
    }
    struct Totals: Encodable {
        let connections, pages, inserted, updated, unchanged, rejected, erased, late, missing, graph_requests, rate_limit_waits, archives: Int
        let graph_errors: [String: Int]
        let rate_limit_wait_seconds: Double
        let archive_bytes: Int64
    }
    let run_id: Int64
    let kind: String
    let backfill_run_id: Int64?
    let exit_code: Int32
    let totals: Totals
    let seconds: Seconds
    let connections: [Pass]

    init(_ summary: RunStage.Summary, exitCode: Int32) {
        run_id = summary.runID
        kind = summary.kind.rawValue
        backfill_run_id = summary.backfillRunID
        exit_code = exitCode
        seconds = Seconds(summary.timings)
        let counts = summary.counts, graph = summary.graph
        let archives = summary.connections.compactMap(\.archive)
        totals = Totals(connections: Set(summary.connections.map(\.label)).count, pages: summary.connections.reduce(0) { $0 + $1.pages },
                        inserted: counts.inserted, updated: counts.updated, unchanged: counts.unchanged, rejected: counts.rejected,
                        erased: counts.erased, late: counts.late, missing: counts.missing, graph_requests: graph.requests, rate_limit_waits: graph.rateLimitWaits, archives: archives.count,
                        graph_errors: graph.errors, rate_limit_wait_seconds: graph.rateLimitWaitSeconds,
                        archive_bytes: archives.reduce(0) { $0 + $1.bytes })
        connections = summary.connections.map { pass in
            Pass(connection: pass.label, instance: pass.instance, job: pass.job.description, state: pass.stateName, detail: pass.stateDetail,
                 pages: pass.pages, inserted: pass.counts.inserted, updated: pass.counts.updated, unchanged: pass.counts.unchanged,
                 rejected: pass.counts.rejected, erased: pass.counts.erased, late: pass.counts.late, missing: pass.counts.missing,
                 graph_requests: pass.graph.requests,
                 rate_limit_waits: pass.graph.rateLimitWaits, graph_errors: pass.graph.errors,
                 rate_limit_wait_seconds: pass.graph.rateLimitWaitSeconds, seconds: Seconds(pass.timings),
                 archive: pass.archive.map { Archive(id: $0.id, path: $0.path, bytes: $0.bytes) },
                 forms: pass.forms.map { form in
                     Form(form_id: form.formID, window_from: form.window?.from.map(UTCTime.iso8601), window_to: form.window.map { UTCTime.iso8601($0.to) },
                          pages: form.pages, leads: form.leads, inserted: form.counts.inserted, updated: form.counts.updated,
                          unchanged: form.counts.unchanged, rejected: form.counts.rejected, graph_requests: form.graph.requests,
                          graph_errors: form.graph.errors, error_code: form.failure?.code, error: form.failure?.description)
                 })
        }
    }
}

import Foundation
import LeadFlowCore

/// The Prometheus metrics `run` and `backfill` write after every run (`--metrics-file`,
/// `--pushgateway`): what this run did (gauges named `leadflow_last_run_…`, labelled with
/// the run's `kind`), the running totals every run adds to (`…_total` counters kept in
/// Postgres, so they only rise, whichever worker writes them), and the state the runs leave
/// (connections by state, leads waiting in Facebook, pending notifications, archives).
///
/// Labels are few and bounded: `kind`, `stage`, `result`, `state`, `cause`, `channel`, a
/// Graph error code, and `instance` (an Integrate instance, one per customer). Never a lead,
/// a Page, a form or a person.
public enum RunMetrics {
    /// - Parameters:
    ///   - summary: the run's; nil when it failed before it had one (the database unreachable).
    ///   - exitCode: what the process exits with.
    ///   - seconds: the run's wall-clock time.
    ///   - report: the gap report at the run's end (nil when the database could not be read).
    public static func text(kind: RunKind, summary: RunStage.Summary?, exitCode: Int32, seconds: Double, now: Date,
                            facts: MetricsFacts?, report: GapReport?) -> PrometheusText {
        var text = PrometheusText()
        let kindLabel = PrometheusText.Label("kind", kind.rawValue)
        func one(_ value: Double) -> [PrometheusText.Sample] { [.init([kindLabel], value)] }

        text.add("leadflow_last_run_timestamp_seconds", .gauge, help: "When the last run of this kind ended (Unix time, on the run's clock).",
                 one((facts?.runFinishedAt ?? now).timeIntervalSince1970))
        if let success = facts?.lastSuccessAt {
            text.add("leadflow_last_success_timestamp_seconds", .gauge,
                     help: "When the last run of this kind that finished without a failure (exit 0 or 2) ended (Unix time).",
                     one(success.timeIntervalSince1970))
        }
        text.add("leadflow_last_run_exit_code", .gauge, help: "The last run's exit code: 0 fine, 1 something failed, 2 a person must act, 64 configuration.",
                 one(Double(exitCode)))
        text.add("leadflow_last_run_duration_seconds", .gauge, help: "The last run's wall-clock time.", one(seconds))

        if let summary {
            let t = summary.timings
            text.add("leadflow_last_run_stage_seconds", .gauge, help: "Seconds the last run spent in each stage, summed over connections.",
                     [("preflight", t.preflight), ("extract", t.extract), ("archive", t.archive), ("load", t.load)].map {
                         .init([kindLabel, .init("stage", $0.0)], $0.1)
                     })
            var perInstance: [String: LoadCounts] = [:]
            for connection in summary.connections {
                perInstance[connection.instance ?? "", default: LoadCounts()] = perInstance[connection.instance ?? "", default: LoadCounts()] + connection.counts
            }
            text.add("leadflow_last_run_leads", .gauge, help: "Leads of the last run per instance: inserted (new), updated, unchanged, rejected.",
                     perInstance.keys.sorted().flatMap { instance -> [PrometheusText.Sample] in
                         let c = perInstance[instance]!
                         return [("inserted", c.inserted), ("updated", c.updated), ("unchanged", c.unchanged), ("rejected", c.rejected)].map {
                             .init([kindLabel, .init("instance", instance), .init("result", $0.0)], Double($0.1))
                         }
                     })
            let states = ["loaded", "void", "skipped", "partial", "idle"]
            text.add("leadflow_last_run_passes", .gauge, help: "Connection passes of the last run by outcome.",
                     states.map { state in .init([kindLabel, .init("state", state)], Double(summary.connections.filter { $0.stateName == state }.count)) })
            let graph = summary.graph
            text.add("leadflow_last_run_graph_requests", .gauge, help: "Graph API requests the last run made.", one(Double(graph.requests)))
            text.add("leadflow_last_run_graph_errors", .gauge, help: "Graph API answers of the last run that were errors (retried ones too).",
                     one(Double(graph.errorCount)))
            text.add("leadflow_last_run_rate_limit_waits", .gauge, help: "Times the last run waited for a Graph rate limit.",
                     one(Double(graph.rateLimitWaits)))
            text.add("leadflow_last_run_rate_limit_wait_seconds", .gauge, help: "Seconds the last run waited for Graph rate limits.",
                     one(graph.rateLimitWaitSeconds))
            text.add("leadflow_last_run_archive_bytes", .gauge, help: "Bytes of the archives the last run wrote.",
                     one(Double(summary.connections.reduce(Int64(0)) { $0 + ($1.archive?.bytes ?? 0) })))
        }

        if let facts {
            counters(facts.totals, into: &text)
            let channels = ["webhook", "mail:authenticator", "mail:csm", "unrouted"]
            text.add("leadflow_notifications_pending", .gauge, help: "Notification deliveries not made yet, by channel (unrouted: not yet given channels).",
                     (channels + facts.pendingNotifications.keys.filter { !channels.contains($0) }.sorted()).map {
                         .init([.init("channel", $0)], Double(facts.pendingNotifications[$0] ?? 0))
                     })
            text.add("leadflow_archives", .gauge, help: "Archive files on disk (neither pruned nor superseded).", value: Double(facts.archives))
            text.add("leadflow_archive_bytes", .gauge, help: "Bytes of the archive files on disk.", value: Double(facts.archiveBytes))
        }

        if let report {
            let states = ["healthy", "reminder_due", "void"]
            text.add("leadflow_connections", .gauge, help: "Connections by state (void: expired, invalidated, or a permission or lead access lost).",
                     states.map { state in .init([.init("state", state)], Double(report.connections.filter { $0.status == state }.count)) })
            var causes = Dictionary(uniqueKeysWithValues: VoidCause.allCases.map { ($0.rawValue, 0) })
            for connection in report.connections where connection.status == "void" {
                // An open period names its cause; a cycle past its 90 days without one yet is an expiry.
                let cause = connection.periods.last { $0.endedAt == nil }?.cause.rawValue ?? VoidCause.tokenExpired.rawValue
                causes[cause, default: 0] += 1
            }
            text.add("leadflow_void_connections", .gauge, help: "Void connections by cause.",
                     causes.keys.sorted().map { .init([.init("cause", $0)], Double(causes[$0]!)) })
            text.add("leadflow_missing_leads_estimate", .gauge,
                     help: "Leads Facebook still keeps that Integrate lacks, per instance (the gap report's 'waiting'; partly an estimate while a connection is void).",
                     report.instances.map { .init([.init("instance", $0.instance)], Double($0.waiting)) })
            text.add("leadflow_late_leads", .gauge,
                     help: "Leads Facebook's form counters hold outside any void period that Graph has not returned yet (re-read hourly), per instance.",
                     report.instances.map { instance in
                         .init([.init("instance", instance.instance)],
                               Double(report.connections.filter { $0.instance == instance.instance }.reduce(0) { $0 + $1.late }))
                     })
        }
        return text
    }

    /// The running totals, as counters. Each has a family even before its first increment,
    /// so a query never finds it absent.
    static func counters(_ totals: [MetricTotal], into text: inout PrometheusText) {
        func values(_ name: String) -> [MetricTotal] { totals.filter { $0.name == name } }
        func add(_ family: String, help: String, from name: String, label: String? = nil) {
            let found = values(name)
            let samples: [PrometheusText.Sample]
            if let label {
                samples = found.map { .init([.init(label, $0.label)], $0.value) }
            } else {
                samples = [.init([], found.first?.value ?? 0)]
            }
            text.add(family, .counter, help: help, samples)
        }
        add("leadflow_leads_loaded_total", help: "Leads inserted (new to Integrate), per instance, by every run so far.", from: "leads_inserted",
            label: "instance")
        add("leadflow_leads_updated_total", help: "Leads rewritten because Facebook's copy changed, per instance.", from: "leads_updated",
            label: "instance")
        add("leadflow_leads_rejected_total", help: "Leads rejected (no contact, bad id, …), per instance; a re-read rejection counts again.",
            from: "leads_rejected", label: "instance")
        add("leadflow_graph_requests_total", help: "Graph API requests made by every run so far.", from: "graph_requests")
        add("leadflow_graph_errors_total", help: "Graph API error answers by code (graph.<code>[.<subcode>], http.timeout, …), retried ones too.",
            from: "graph_errors", label: "code")
        add("leadflow_graph_rate_limit_waits_total", help: "Times a run waited for a Graph rate limit.", from: "rate_limit_waits")
        add("leadflow_graph_rate_limit_wait_seconds_total", help: "Seconds runs waited for Graph rate limits.", from: "rate_limit_wait_seconds")
        add("leadflow_archives_written_total", help: "Archives written by every run so far.", from: "archives_written")
        add("leadflow_archive_bytes_written_total", help: "Bytes of the archives written by every run so far.", from: "archive_bytes_written")
        let runs = totals.filter { $0.name.hasPrefix("runs_") }
        text.add("leadflow_runs_total", .counter, help: "Runs finished, by kind and status (succeeded, partial, failed).",
                 runs.map { .init([.init("kind", $0.label), .init("status", String($0.name.dropFirst("runs_".count)))], $0.value) })
    }
}

import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// What a run tells the people and the machines that watch it: Prometheus metrics in a file
/// and on a Pushgateway, `run --json`, `runs`, `runs show`, and `--json` on `check` and
/// `archive`; each held to the run's own rows and to what the Graph fake saw.
@Suite(.serialized) struct ObservabilityTests {
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let leadflow: LeadFlowCLI

    init() throws {
        var pages: [GraphScenario.Page] = []
        var tokens: [GraphScenario.Token] = []
        for (pageID, instance) in [("1001", "acme"), ("2001", "globex")] {
            pages.append(.init(id: pageID, name: "Page \(pageID)", forms: (0..<2).map { f in
                .init(id: "\(pageID)\(f)", name: "Form \(f)", generate: .init(count: 150, start: "2026-11-01T00:00:00+0000", spacingSeconds: 600))
            }))
            var token = GraphScenario.Token(token: "EAAB-obs-token-\(instance)", pages: [pageID])
            token.type = "USER"
            tokens.append(token)
        }
        fake = try GraphFake(scenario: GraphScenario(pages: pages, tokens: tokens), now: Self.now)
        databaseURL = try TestDatabase.create("obs")
        home = try Repository.temporaryFolder("obs")
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, now: Self.now)
    }

    func connectBoth() async throws {
        for (page, instance) in [("1001", "acme"), ("2001", "globex")] {
            let result = try await leadflow(["connect", "--instance", instance, "--page", page, "--name", instance], input: "EAAB-obs-token-\(instance)\n")
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }

    /// Requests that reached the fake over HTTP (calls inside a batch are one request).
    var httpRequests: Int { fake.requestLog.filter { !$0.batched }.count }

    @Test func metricsParseAndMatchTheRunAndThePushgatewayGetsTheSameBody() async throws {
        let received = Received()
        let gateway = try LoopbackHTTPServer { request in
            received.add(request)
            return .init(status: 200)
        }
        try await connectBoth()
        let file = home.appendingPathComponent("textfile/leadflow.prom")
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let before = httpRequests

        let run = try await leadflow(["run", "--json", "--metrics-file", file.path, "--pushgateway", gateway.baseURL])
        #expect(run.status == 0, "\(run.stderr)")
        let summary = try object(run.stdout)
        let totals = try #require(summary["totals"] as? [String: Any])
        #expect(totals["inserted"] as? Int == 600)

        let text = try String(contentsOf: file, encoding: .utf8)
        let metrics = try PrometheusExposition(text)
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: file.deletingLastPathComponent().path) == ["leadflow.prom"],
                "no temporary file left beside it")

        // This run's figures are the summary's.
        for (result, key) in [("inserted", "inserted"), ("updated", "updated"), ("unchanged", "unchanged"), ("rejected", "rejected")] {
            #expect(metrics.sum("leadflow_last_run_leads", ["result": result]) == Double(totals[key] as? Int ?? -1), "\(result)")
        }
        #expect(metrics.value("leadflow_last_run_leads", ["instance": "acme", "result": "inserted"]) == 300)
        #expect(metrics.value("leadflow_last_run_graph_requests") == Double(totals["graph_requests"] as? Int ?? -1))
        #expect(metrics.value("leadflow_last_run_graph_requests") == Double(httpRequests - before), "every request the fake answered, counted")
        #expect(metrics.value("leadflow_last_run_archive_bytes") == Double(totals["archive_bytes"] as? Int ?? -1))
        #expect(metrics.value("leadflow_last_run_exit_code") == 0)
        #expect(metrics.value("leadflow_last_run_timestamp_seconds") == Self.now.timeIntervalSince1970)
        #expect(metrics.value("leadflow_last_success_timestamp_seconds") == Self.now.timeIntervalSince1970)
        #expect(metrics.value("leadflow_last_run_passes", ["state": "loaded"]) == 2)
        #expect(metrics.sum("leadflow_last_run_stage_seconds") > 0)
        // The running totals start with this run.
        #expect(metrics.value("leadflow_leads_loaded_total", ["instance": "globex"]) == 300)
        #expect(metrics.value("leadflow_graph_requests_total") == metrics.value("leadflow_last_run_graph_requests"))
        #expect(metrics.value("leadflow_runs_total", ["kind": "scheduled", "status": "succeeded"]) == 1)
        // The state the run leaves.
        let db = try PostgresConnection(conninfo: databaseURL)
        let archived = try db.query("SELECT count(*), sum(bytes) FROM archives")[0]
        #expect(metrics.value("leadflow_archives") == Double(try archived.int(0) ?? -1))
        #expect(metrics.value("leadflow_archive_bytes") == Double(try archived.int(1) ?? -1))
        #expect(metrics.value("leadflow_connections", ["state": "healthy"]) == 2)
        #expect(metrics.sum("leadflow_void_connections") == 0)
        #expect(metrics.value("leadflow_missing_leads_estimate", ["instance": "acme"]) == 0)
        #expect(metrics.types["leadflow_leads_loaded_total"] == "counter" && metrics.types["leadflow_last_run_leads"] == "gauge")
        // Nothing that names a person, a Page, a form or a token.
        for forbidden in ["EAAB", "1001", "10010", "@", "Page "] { #expect(!text.contains(forbidden), "\(forbidden)") }

        // The Pushgateway got the same text, once, as a PUT that replaces the job's group.
        let pushes = received.all
        #expect(pushes.count == 1)
        #expect(pushes.first?.method == "PUT")
        #expect(pushes.first?.path == "/metrics/job/leadflow")
        #expect(pushes.first.map { String(decoding: $0.body, as: UTF8.self) } == text)
        #expect(pushes.first?.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)

        // A second run with new leads: the counters rise by exactly what its summary says.
        fake.addLeads((0..<7).map { i in
            GraphLead(id: "77700\(i)", createdTime: "2026-11-10T00:0\(i):00+0000",
                      fieldData: [.init(name: "email", values: ["new\(i)@example.com"])])
        }, toForm: "10010")
        let second = try await leadflow(["run", "--json", "--metrics-file", file.path])
        #expect(second.status == 0, "\(second.stderr)")
        let secondTotals = try #require(try object(second.stdout)["totals"] as? [String: Any])
        #expect(secondTotals["inserted"] as? Int == 7)
        let after = try PrometheusExposition(try String(contentsOf: file, encoding: .utf8))
        #expect(after.value("leadflow_leads_loaded_total", ["instance": "acme"]) == 307)
        #expect(after.value("leadflow_leads_loaded_total", ["instance": "globex"]) == 300)
        #expect(after.value("leadflow_graph_requests_total")
                == (metrics.value("leadflow_graph_requests_total") ?? 0) + Double(secondTotals["graph_requests"] as? Int ?? -1))
        #expect(after.value("leadflow_archive_bytes_written_total")
                == (metrics.value("leadflow_archive_bytes_written_total") ?? 0) + Double(secondTotals["archive_bytes"] as? Int ?? -1))
        #expect(after.value("leadflow_runs_total", ["kind": "scheduled", "status": "succeeded"]) == 2)
        #expect(received.all.count == 1, "no --pushgateway, no push")
    }

    /// A Pushgateway that refuses, and a metrics file that cannot be written, are said on
    /// stderr (even under --quiet) and never change the exit code.
    @Test func metricsThatCannotBePublishedNeverFailTheRun() async throws {
        let gateway = try LoopbackHTTPServer { _ in .init(status: 503) }
        try await connectBoth()
        let run = try await leadflow(["run", "--quiet", "--metrics-file", home.appendingPathComponent("absent/folder/x.prom").path,
                                      "--pushgateway", gateway.baseURL + "/"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("metrics.file: could not write"), "\(run.stderr)")
        #expect(run.stderr.contains("metrics.push: http://127.0.0.1:\(gateway.port) did not take the metrics (HTTP 503)"), "\(run.stderr)")
        #expect(try await leadflow(["run", "--pushgateway", "ftp://example.com"]).status == 64)
    }

    /// `runs --json` and `runs show ID --json` say what the run tables hold, and those hold
    /// what the run's own summary said.
    @Test func runsJSONMatchesTheRunsRows() async throws {
        try await connectBoth()
        fake.addFault(.init(path: "20011/leads", onRequest: 1, times: 1_000, kind: .graphError, fixture: "invalid_cursor_100", status: 400))
        let run = try await leadflow(["run", "--json"])
        #expect(run.status == 1, "a form that cannot be read fails the run: \(run.stderr)")
        let summary = try object(run.stdout)
        let runID = try #require(summary["run_id"] as? Int)

        let list = try object(try await leadflow(["runs", "--json", "--limit", "5"]).stdout)
        let runs = try #require(list["runs"] as? [[String: Any]])
        #expect(runs.count == 1)
        let db = try PostgresConnection(conninfo: databaseURL)
        let row = try db.query("SELECT id, kind, status, failures, counters->>'inserted', started_at FROM runs")[0]
        #expect(try row.int(0) == runs[0]["id"] as? Int)
        #expect(runs[0]["kind"] as? String == "scheduled")
        #expect(runs[0]["status"] as? String == "partial")
        #expect(try row.string(2) == "partial")
        #expect(runs[0]["failures"] as? Int == 1)
        #expect(try row.int(3) == 1)
        #expect((runs[0]["counters"] as? [String: Int])?["inserted"] == Int(try row.string(4) ?? ""))
        #expect(runs[0]["started_at"] as? String == UTCTime.iso8601(try row.date(5)!))
        #expect(runs[0]["connections"] as? Int == 2)

        let shown = try await leadflow(["runs", "show", String(runID), "--json"])
        #expect(shown.status == 0, "\(shown.stderr)")
        let detail = try object(shown.stdout)
        let passes = try #require(detail["passes"] as? [[String: Any]])
        let rows = try db.query("""
            SELECT c.label, p.state, p.pages, p.inserted, p.graph_requests, p.archive_id, p.id FROM run_passes p
            JOIN connections c ON c.id = p.connection_id WHERE p.run_id = $1 ORDER BY p.id
            """, [runID]).all
        #expect(passes.count == rows.count && rows.count == 2)
        for (pass, row) in zip(passes, rows) {
            #expect(try row.string(0) == pass["connection"] as? String)
            #expect(try row.string(1) == pass["state"] as? String)
            #expect(try row.int(2) == pass["pages"] as? Int)
            #expect(try row.int(3) == pass["inserted"] as? Int)
            #expect(try row.int(4) == pass["graph_requests"] as? Int)
            #expect(try row.int(5) == (pass["archive"] as? [String: Any])?["id"] as? Int)
            let forms = try #require(pass["forms"] as? [[String: Any]])
            let formRows = try db.query("SELECT form_id, pages, leads, inserted, error_code, window_to FROM run_forms WHERE pass_id = $1 ORDER BY form_id",
                                        [try row.int(6)!]).all
            #expect(forms.map { $0["form_id"] as? String } == (try formRows.map { try $0.string(0) }))
            for (form, formRow) in zip(forms, formRows) {
                #expect(try formRow.int(1) == form["pages"] as? Int)
                #expect(try formRow.int(2) == form["leads"] as? Int)
                #expect(try formRow.int(3) == form["inserted"] as? Int)
                #expect(try formRow.string(4) == form["error_code"] as? String)
                #expect(form["window_to"] as? String == UTCTime.iso8601(try formRow.date(5)!))
            }
        }
        // The same figures as the run's own summary.
        let summarized = try #require(summary["connections"] as? [[String: Any]])
        #expect(summarized.map { $0["inserted"] as? Int } == passes.map { $0["inserted"] as? Int })
        #expect(summarized.map { $0["graph_requests"] as? Int } == passes.map { $0["graph_requests"] as? Int })
        let failed = passes.flatMap { ($0["forms"] as? [[String: Any]]) ?? [] }.filter { $0["error_code"] is String }
        #expect(failed.map { $0["form_id"] as? String } == ["20011"])
        #expect(failed.first?["error_code"] as? String == "graph.100", "\(failed)")

        // The text forms of the same.
        let table = try await leadflow(["runs"])
        #expect(table.status == 0 && table.stdout.contains("partial (1 failed)"), "\(table.stdout)")
        let text = try await leadflow(["runs", "show", String(runID)])
        #expect(text.stdout.contains("20011") && text.stdout.contains("graph.100"), "\(text.stdout)")
        #expect(try await leadflow(["runs", "show", "999"]).status == 64)

        // status: each connection's last run, and its last success.
        let status = try object(try await leadflow(["status", "--json"]).stdout)
        let connections = try #require(status["connections"] as? [[String: Any]])
        for connection in connections {
            #expect(connection["last_run_id"] as? Int == runID)
            #expect(connection["last_run_at"] as? String == UTCTime.iso8601(Self.now))
        }
        #expect(connections.first { $0["label"] as? String == "acme" }?["last_success_run_id"] as? Int == runID)
        #expect(connections.first { $0["label"] as? String == "globex" }?["last_success_run_id"] == nil, "its pass was partial")
    }

    /// `--json` on `check`, `archive list` and `archive verify` parse, and say what the tables do.
    @Test func checkAndArchiveJSONParse() async throws {
        try await connectBoth()
        #expect(try await leadflow(["run"]).status == 0)
        let check = try await leadflow(["check", "--json"])
        #expect(check.status == 0, "\(check.stderr)")
        let checked = try #require(try object(check.stdout)["connections"] as? [[String: Any]])
        #expect(Set(checked.compactMap { $0["connection"] as? String }) == ["acme", "globex"])
        #expect(checked.allSatisfy { $0["state"] as? String == "healthy" })

        let list = try await leadflow(["archive", "list", "--json"])
        let archives = try #require(try object(list.stdout)["archives"] as? [[String: Any]])
        let db = try PostgresConnection(conninfo: databaseURL)
        #expect(archives.map { $0["path"] as? String } == (try db.query("SELECT path FROM archives ORDER BY id").all.map { try $0.string(0) }))
        #expect(archives.allSatisfy { $0["pruned_at"] == nil })

        let verify = try await leadflow(["archive", "verify", "--all", "--json"])
        #expect(verify.status == 0)
        let verified = try object(verify.stdout)
        #expect(verified["verified"] as? Int == archives.count && verified["failed"] as? Int == 0)

        // A damaged archive: exit 1, and the JSON names it.
        let path = home.appendingPathComponent(try #require(archives.first?["path"] as? String))
        var bytes = try Data(contentsOf: path)
        bytes[bytes.count / 2] ^= 0x5A
        try bytes.write(to: path)
        let broken = try await leadflow(["archive", "verify", "--all", "--json"])
        #expect(broken.status == 1)
        let answer = try object(broken.stdout)
        #expect(answer["failed"] as? Int == 1)
        #expect((answer["archives"] as? [[String: Any]])?.first?["ok"] as? Bool == false)
    }
}

/// What a loopback Pushgateway received.
final class Received: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [LoopbackHTTPServer.Request] = []
    func add(_ request: LoopbackHTTPServer.Request) { lock.withLock { requests.append(request) } }
    var all: [LoopbackHTTPServer.Request] { lock.withLock { requests } }
}

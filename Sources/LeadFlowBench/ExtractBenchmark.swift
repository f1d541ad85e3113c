// Extraction alone against the Graph fake (in its own process, so its memory is not
// counted): leads/s and requests/s at 0 ms and 50 ms latency, concurrency 1 and 8, for
// 10 Pages × 5 forms, limit=100; and the peak memory of this process.
import Foundation
import LeadFlowCore
import LeadFlowGraph
import LeadFlowStages
import LeadFlowHTTP
import LeadFlowTestSupport

/// Counts what arrives, keeps nothing (memory must not grow with the number of leads).
final class CountingSink: LeadPageSink, @unchecked Sendable {
    private let lock = NSLock()
    private var leads = 0
    private var bytes = 0
    var totals: (leads: Int, bytes: Int) { lock.withLock { (leads, bytes) } }
    func receive(_ page: LeadPage) async throws {
        lock.withLock {
            leads += page.leads.count
            bytes += page.rawBody.count
        }
    }
}

/// 10 Pages × 5 forms sharing `totalLeads`, one token per Page.
func benchScenario(totalLeads: Int, tokenPrefix: String, pages: Int = 10) -> GraphScenario {
    let formsPerPage = 5
    let perForm = totalLeads / (pages * formsPerPage)
    // Leads spread over 330 days, at most one an hour per form: like real forms, a run's
    // overlap re-reads a lead or so per form, not the whole form (the steady-state figure
    // would otherwise be a full re-read).
    let spacing = max(1, min(3_600, 330 * 86_400 / max(perForm, 1)))
    var scenario = GraphScenario()
    for p in 0..<pages {
        let pageID = String(1001 + p)
        scenario.pages.append(.init(id: pageID, name: "Page \(p)", forms: (0..<formsPerPage).map { f in
            .init(id: "\(pageID)\(f)", name: "Form \(f)", generate: .init(count: perForm, start: "2026-01-01T00:00:00+0000", spacingSeconds: spacing))
        }))
        var token = GraphScenario.Token(token: "\(tokenPrefix)\(pageID)", pages: [pageID])
        token.type = "USER"
        scenario.tokens.append(token)
    }
    return scenario
}

func runExtractBenchmark(totalLeads: Int) async throws {
    let pages = 10, formsPerPage = 5
    let perForm = totalLeads / (pages * formsPerPage)
    let scenario = benchScenario(totalLeads: totalLeads, tokenPrefix: "bench-token-")
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("leadflow-bench-extract-\(getpid())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let scenarioFile = folder.appendingPathComponent("scenario.json")
    try JSONEncoder().encode(scenario).write(to: scenarioFile)
    let fakeBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("graph-fake")

    print("extraction: \(pages) Pages × \(formsPerPage) forms, \(perForm * pages * formsPerPage) leads, limit=100")
    print("latency  concurrency  seconds    leads/s  requests/s  requests")
    var rates: [String: Double] = [:]
    for latency in [0, 50] {
        let fake = Process()
        fake.executableURL = fakeBinary
        fake.arguments = [scenarioFile.path, "--now", "2026-12-01T00:00:00Z", "--latency-ms", String(latency), "--exit-on-stdin-eof"]
        let output = Pipe(), input = Pipe()
        fake.standardOutput = output
        fake.standardInput = input
        try fake.run()
        // Closing its standard input ends the fake, even if this process dies first.
        defer { try? input.fileHandleForWriting.close() }
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard let baseURL = line.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) else {
            throw CocoaError(.fileReadUnknown)
        }
        if latency == 0 {
            try await measureBounds(baseURL: baseURL, formID: scenario.pages[0].forms[0].id,
                                    token: AccessToken("bench-token-\(scenario.pages[0].id)"))
        }
        for concurrency in [1, 8] {
            let transport = try CurlHTTPClient(configuration: .init(maxConcurrentTransfers: concurrency))
            let client = GraphClient(transport: transport, configuration: .init(baseURL: baseURL, pageSize: 100))
            let sink = CountingSink()
            let upper = UTCTime.parse("2026-12-01T00:00:00Z")!
            let start = ContinuousClock.now
            let requests = try await withThrowingTaskGroup(of: Int.self) { group in
                for page in scenario.pages {
                    group.addTask {
                        let extractor = ConnectionExtractor(client: client, concurrency: formsPerPage)
                        let outcome = try await extractor.extract(pageID: page.id, token: AccessToken("bench-token-\(page.id)"),
                                                                  window: { _ in LeadWindow(from: nil, to: upper) }, sink: sink)
                        guard case .completed(_, let summaries) = outcome else { fatalError("extraction did not complete: \(outcome)") }
                        return summaries.values.map(\.requests).reduce(1, +) // + the forms request
                    }
                }
                return try await group.reduce(0, +)
            }
            let elapsed = (ContinuousClock.now - start).timeInterval
            let leads = sink.totals.leads
            precondition(leads == perForm * pages * formsPerPage, "lost leads: \(leads)")
            rates["\(latency)/\(concurrency)"] = Double(leads) / elapsed
            print(String(format: "%4d ms  %11d  %7.2f  %9.0f  %10.0f  %8d", latency, concurrency, elapsed,
                         Double(leads) / elapsed, Double(requests) / elapsed, requests))
        }
    }
    if let one = rates["50/1"], let eight = rates["50/8"] {
        print(String(format: "speed-up at 50 ms, concurrency 8 vs 1: %.1f×", eight / one))
    }
    print(String(format: "peak resident memory of the extracting process: %.1f MB", peakResidentMegabytes()))
}

/// What bounds extraction at 0 ms: the fake's own time per page (one request at a time),
/// and the client's JSON decoding of a page, each alone.
func measureBounds(baseURL: String, formID: String, token: AccessToken) async throws {
    let transport = try CurlHTTPClient(configuration: .init(maxConcurrentTransfers: 1))
    let request = HTTPRequest(url: "\(baseURL)/v25.0/\(formID)/leads",
                              query: [("fields", GraphFields.leads), ("limit", "100")],
                              headers: [("Authorization", "Bearer \(token.secret)")])
    var body = Data()
    let rounds = 200
    let served = try await {
        let start = ContinuousClock.now
        for _ in 0..<rounds { body = try await transport.send(request).body }
        return (ContinuousClock.now - start).timeInterval
    }()
    let decoded = try seconds {
        for _ in 0..<rounds { _ = try JSONDecoder().decode(GraphList<GraphLead>.self, from: body) }
    }
    let serialization = try seconds {
        for _ in 0..<rounds { _ = try JSONSerialization.jsonObject(with: body) }
    }
    print(String(format: "for comparison, JSONSerialization parses the same page in %.1f ms", serialization / Double(rounds) * 1000))
    print(String(format: "bounds: one page of 100 leads (%d KB): fake serves it in %.1f ms (%.0f leads/s over HTTP, one at a time); client decodes it in %.1f ms (%.0f leads/s)",
                 body.count / 1024, served / Double(rounds) * 1000, Double(rounds * 100) / served,
                 decoded / Double(rounds) * 1000, Double(rounds * 100) / decoded))
}

/// `connect --all-pages` at scale: an authenticator who manages `pages` Pages (one form
/// each, no leads: connect reads none) hands over one fresh short-lived user token.
func connectScenario(pages: Int, issuedAt: String) -> GraphScenario {
    var scenario = GraphScenario()
    let ids = (0..<pages).map { String(1001 + $0) }
    scenario.pages = ids.map { .init(id: $0, name: "Bench Page \($0)", forms: [.init(id: "\($0)0", name: "Form")]) }
    scenario.tokens = [.user("EAAB-bench-user", id: "42", name: "Bench Authenticator", pages: ids, issuedAt: issuedAt)]
    return scenario
}

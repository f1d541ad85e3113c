import Foundation
import LeadFlowCore
import LeadFlowGraph
import LeadFlowStages
import LeadFlowHTTP
import LeadFlowTestSupport
import Logging
import Testing

/// The Graph client against the Graph fake, over real HTTP (libcurl on loopback).
@Suite struct GraphClientTests {
    static let token = "EAAB-page-token-1001-\(UInt32.random(in: 0...UInt32.max))"
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!
    static let start = "2026-11-01T00:00:00+0000"

    /// One Page with one form of `count` leads, one a minute from Nov 1.
    func scenario(count: Int = 2_500, form: String = "2001", configure: (inout GraphScenario) -> Void = { _ in }) -> GraphScenario {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme", forms: [.init(id: form, name: "Webinar", generate: .init(count: count, start: Self.start))])],
            tokens: [.init(token: Self.token, pages: ["1001"])])
        configure(&scenario)
        return scenario
    }

    func client(_ fake: GraphFake, pageSize: Int = 100, logger: Logger? = nil, sleeper: RecordingSleeper = RecordingSleeper(),
                maxAttempts: Int = 4, appSecret: String? = GraphScenario().appSecret, transfers: Int = 8, board: (any UsageBoard)? = nil) throws -> GraphClient {
        let transport = try CurlHTTPClient(configuration: .init(maxConcurrentTransfers: transfers))
        return GraphClient(transport: transport,
                           configuration: .init(baseURL: fake.baseURL, pageSize: pageSize, appSecret: appSecret,
                                                retry: RetryPolicy(maxAttempts: maxAttempts), requestTimeout: .seconds(5)),
                           logger: logger ?? Logger(label: "test"), sleeper: sleeper, usageBoard: board)
    }

    /// Reads the whole window and returns every page handed on.
    func readAll(_ client: GraphClient, form: String = "2001", window: LeadWindow = LeadWindow(from: nil, to: now)) async throws
        -> (pages: [LeadPage], summary: LeadStreamSummary) {
        var pages: [LeadPage] = []
        let summary = try await client.leads(formID: form, window: window, token: AccessToken(Self.token)) { pages.append($0) }
        return (pages, summary)
    }

    @Test func everyLeadArrivesExactlyOnceAcrossShortPages() async throws {
        let fake = try GraphFake(scenario: scenario { $0.shortPageEvery = 4 }, now: Self.now)
        let (pages, summary) = try await readAll(try client(fake))
        let ids = pages.flatMap { $0.leads.map(\.id) }
        #expect(ids.count == 2_500)
        #expect(Set(ids) == Set(fake.leads(ofForm: "2001").map(\.id)))
        #expect(pages.count > 25)
        #expect(pages.contains { $0.leads.count < 100 && $0.number < pages.count }, "a short page mid-stream did not stop paging")
        #expect(summary.leads == 2_500)
        #expect(summary.requests == pages.count)
    }

    @Test func windowBoundsHoldToTheSecond() async throws {
        let base = try #require(UTCTime.parse("2026-11-10T12:00:00Z"))
        func lead(_ id: String, _ offset: Double) -> GraphLead {
            GraphLead(id: id, createdTime: UTCTime.iso8601(base.addingTimeInterval(offset)), fieldData: [.init(name: "email", values: ["x@y.z"])])
        }
        let fake = try GraphFake(scenario: scenario(count: 0), now: Self.now)
        fake.addLeads([lead("1", -1), lead("2", 0), lead("3", 3599), lead("4", 3600)], toForm: "2001")
        let (pages, _) = try await readAll(try client(fake), window: LeadWindow(from: base, to: base.addingTimeInterval(3600)))
        #expect(pages.flatMap { $0.leads.map(\.id) }.sorted() == ["2", "3"])
    }

    @Test func aServerErrorOnPageSevenIsRetriedAndTheStreamCompletes() async throws {
        let sleeper = RecordingSleeper()
        let fake = try GraphFake(scenario: scenario { $0.faults = [.init(path: "/leads", onRequest: 7, times: 2, kind: .http500)] }, now: Self.now)
        let (pages, summary) = try await readAll(try client(fake, sleeper: sleeper))
        #expect(Set(pages.flatMap { $0.leads.map(\.id) }).count == 2_500)
        #expect(summary.requests == pages.count + 2)
        #expect(sleeper.waits.count == 2, "one backoff per failed attempt")
        #expect(fake.requestLog.filter { $0.status == 500 }.count == 2)
    }

    @Test func aRateLimitWaitsWhatGraphSaysThenResumes() async throws {
        let sleeper = RecordingSleeper()
        let fake = try GraphFake(scenario: scenario {
            $0.faults = [.init(path: "/leads", onRequest: 3, kind: .graphError, fixture: "lead_gen_rate_limit_80005", regainAccessMinutes: 2)]
        }, now: Self.now)
        let (pages, _) = try await readAll(try client(fake, sleeper: sleeper))
        #expect(Set(pages.flatMap { $0.leads.map(\.id) }).count == 2_500)
        #expect(sleeper.waits.contains(.seconds(120)), "waited estimated_time_to_regain_access")
    }

    @Test func usageNearTheQuotaSlowsRequestsDownBeforeGraphRefuses() async throws {
        let sleeper = RecordingSleeper()
        // The window outlasts the read even when the whole suite starves this task for minutes.
        let fake = try GraphFake(scenario: scenario(count: 2_000) { $0.callsPerMinuteQuota = 10; $0.quotaWindowSeconds = 3_600 }, now: Self.now)
        let (pages, _) = try await readAll(try client(fake, sleeper: sleeper))
        #expect(Set(pages.flatMap { $0.leads.map(\.id) }).count == 2_000)
        // The k-th answer reports (k − 1) × 10 % of the quota; above 80 %, that is from the
        // 10th answer on, every next request waits first.
        #expect(pages.count == 20)
        #expect(sleeper.waits.count == pages.count - 10)
        #expect(sleeper.waits.allSatisfy { $0 > .zero && $0 <= .seconds(5) })
    }

    /// Another worker of the app saw 95 %: this client slows down before its own first
    /// request, though Graph has told it nothing yet; and it shares what it sees.
    @Test func usageAnotherWorkerSawSlowsThisClientFromItsFirstRequest() async throws {
        let sleeper = RecordingSleeper()
        let board = InMemoryUsageBoard(GraphUsage(percent: 95, regainAccessIn: nil))
        let fake = try GraphFake(scenario: scenario(count: 300), now: Self.now)
        let (pages, _) = try await readAll(try client(fake, sleeper: sleeper, board: board))
        #expect(pages.count == 3)
        #expect(sleeper.waits.count == 3 && sleeper.waits.allSatisfy { $0 > .seconds(3) && $0 <= .seconds(5) })
        #expect(board.publishedUsages.count == 3)
    }

    /// A Page's own throttling (business use case usage, keyed by the Page, with Graph's
    /// estimate of when it regains access) is that Page's: the board, which every worker of
    /// the app reads, gets the app's usage only, so one throttled Page stops no other.
    @Test func aPagesThrottlingIsNotSharedWithTheWholeApp() async throws {
        let fake = try GraphFake(scenario: scenario {
            $0.faults = [.init(path: "/leads", onRequest: 2, kind: .graphError, fixture: "lead_gen_rate_limit_80005", regainAccessMinutes: 7)]
        }, now: Self.now)
        let board = InMemoryUsageBoard(nil)
        let sleeper = RecordingSleeper()
        _ = try await readAll(try client(fake, sleeper: sleeper, board: board))
        #expect(sleeper.waits.contains(.seconds(7 * 60)), "this Page waits Graph's estimate: \(sleeper.waits)")
        #expect(!board.publishedUsages.isEmpty)
        #expect(board.publishedUsages.allSatisfy { $0.regainAccessIn == nil && $0.percent == $0.appPercent },
                "only the app-wide part is shared: \(board.publishedUsages)")
    }

    @Test func aRateLimitLongerThanTheBoundStopsTheStream() async throws {
        // A Page's lead-retrieval quota, with Graph's estimate of 10 minutes each time: the
        // second wait would pass the 15-minute bound.
        let fake = try GraphFake(scenario: scenario {
            $0.faults = [.init(path: "/leads", onRequest: 2, times: 100, kind: .graphError, fixture: "lead_gen_rate_limit_80005", regainAccessMinutes: 10)]
        }, now: Self.now)
        let sleeper = RecordingSleeper()
        let graph = try client(fake, sleeper: sleeper)
        let error = await #expect(throws: GraphError.self) { try await readAll(graph) }
        #expect(error?.isRateLimit == true, "\(error?.description ?? "none")")
        #expect(sleeper.waits.filter { $0 == .seconds(600) }.count == 1, "one wait of Graph's estimate, then the bound: \(sleeper.waits)")
        #expect(!graph.rateLimitBudget.isSpent, "a Page's limit: other Pages are still read")
        // The bound is the client's (the run's), not the stream's: the next stream that meets a
        // rate limit gives up at once instead of waiting another 15 minutes.
        let before = sleeper.waits.count
        let again = await #expect(throws: GraphError.self) { try await readAll(graph) }
        #expect(again?.isRateLimit == true)
        #expect(sleeper.waits.count == before, "no second wait: \(sleeper.waits)")
    }

    @Test func anAppRateLimitWithoutAnEstimateBacksOffExponentiallyUntilTheBound() async throws {
        // Code 4 comes with X-App-Usage only (no time to regain access): the waits grow.
        let fake = try GraphFake(scenario: scenario {
            $0.faults = [.init(path: "/leads", onRequest: 2, times: 1_000, kind: .graphError, fixture: "app_rate_limit_4")]
        }, now: Self.now)
        let sleeper = RecordingSleeper()
        let error = await #expect(throws: GraphError.self) { try await readAll(try client(fake, sleeper: sleeper)) }
        #expect(error?.isRateLimit == true)
        let waits = sleeper.waits
        #expect(waits.count > 5 && waits.count < 100, "\(waits.count) waits")
        #expect(waits.max()! > waits.first!, "the backoff grew")
    }

    @Test func aTokenThatExpiresOnPageThreeVoidsTheConnectionAndStopsAllCalls() async throws {
        let fake = try GraphFake(scenario: scenario { $0.faults = [.init(path: "/leads", onRequest: 3, kind: .expireToken)] }, now: Self.now)
        let extractor = ConnectionExtractor(client: try client(fake), concurrency: 1)
        let sink = CollectingSink()
        let outcome = try await extractor.extract(pageID: "1001", token: AccessToken(Self.token),
                                                  window: { _ in LeadWindow(from: nil, to: Self.now) }, sink: sink)
        guard case .void(let cause, let detail, _, _, _) = outcome else {
            Issue.record("expected a void outcome, got \(outcome)")
            return
        }
        #expect(cause == .tokenExpired)
        #expect(detail == "token expired")
        #expect(sink.pages.count == 2, "the pages before the expiry were handed on")
        let log = fake.requestLog
        #expect(log.last?.status == 400)
        #expect(log.filter { $0.path.hasSuffix("/leads") }.count == 3, "no lead request after the void answer")
    }

    @Test func truncatedAndInvalidBodiesAreRetried() async throws {
        let fake = try GraphFake(scenario: scenario {
            $0.faults = [.init(path: "/leads", onRequest: 2, kind: .truncate), .init(path: "/leads", onRequest: 5, kind: .invalidJSON)]
        }, now: Self.now)
        let (pages, _) = try await readAll(try client(fake))
        #expect(Set(pages.flatMap { $0.leads.map(\.id) }).count == 2_500)
    }

    @Test func aPermanentlyBrokenPageFailsTheFormButKeepsThePagesBeforeIt() async throws {
        let fake = try GraphFake(scenario: scenario {
            $0.faults = [.init(path: "/leads", onRequest: 4, times: 1_000, kind: .invalidJSON)]
        }, now: Self.now)
        var pages: [LeadPage] = []
        let error = await #expect(throws: GraphError.self) {
            _ = try await client(fake, maxAttempts: 3).leads(formID: "2001", window: LeadWindow(from: nil, to: Self.now),
                                                             token: AccessToken(Self.token)) { pages.append($0) }
        }
        #expect(error?.kind == .exhausted)
        #expect(error?.disposition == .fatal)
        #expect(pages.map(\.number) == [1, 2, 3])
        #expect(Set(pages.flatMap { $0.leads.map(\.id) }).count == 300)
    }

    @Test func graphAskingForLessDataHalvesTheLimit() async throws {
        let fake = try GraphFake(scenario: scenario { $0.maxLimit = 100 }, now: Self.now)
        let (pages, summary) = try await readAll(try client(fake, pageSize: 500))
        #expect(Set(pages.flatMap { $0.leads.map(\.id) }).count == 2_500)
        #expect(summary.finalLimit == 62)
        #expect(fake.requestLog.filter { $0.status == 500 }.count == 3)
    }

    @Test func aRepeatedCursorIsALoopNotAnEndlessStream() async throws {
        let server = try LoopbackHTTPServer { _ in
            .json(#"{"data":[{"id":"1","created_time":"2026-11-01T00:00:00+0000","field_data":[]}],"paging":{"cursors":{"after":"SAME"},"next":"http://elsewhere/x"}}"#)
        }
        let transport = try CurlHTTPClient()
        let client = GraphClient(transport: transport, configuration: .init(baseURL: server.baseURL), sleeper: RecordingSleeper())
        let error = await #expect(throws: GraphError.self) {
            _ = try await client.leads(formID: "2001", window: LeadWindow(from: nil, to: Self.now), token: AccessToken("t")) { _ in }
        }
        #expect(error?.kind == .cursorLoop)
        #expect(server.requestsServed == 2)
    }

    @Test func aNextURLOnAnotherHostIsNeverFollowed() async throws {
        let elsewhere = try LoopbackHTTPServer { _ in .json(#"{"data":[]}"#) }
        let fake = try GraphFake(scenario: scenario { $0.nextURLHost = elsewhere.baseURL }, now: Self.now)
        let (pages, _) = try await readAll(try client(fake))
        #expect(Set(pages.flatMap { $0.leads.map(\.id) }).count == 2_500)
        #expect(elsewhere.requestsServed == 0)
    }

    @Test func formsOfEveryStatusWithTheirCounters() async throws {
        var scenario = scenario(count: 10)
        scenario.pages[0].forms.append(.init(id: "2002", name: "Old offer", status: "ARCHIVED", generate: .init(count: 4, start: Self.start, organicEvery: 2)))
        scenario.pages[0].forms[1].expiredLeadsCount = 3
        let fake = try GraphFake(scenario: scenario, now: Self.now)
        let forms = try await client(fake, pageSize: 1).forms(pageID: "1001", token: AccessToken(Self.token))
        #expect(forms.map(\.id) == ["2001", "2002"])
        #expect(forms[1].status == "ARCHIVED")
        #expect(forms[1].leadsCount == 7)
        #expect(forms[1].organicLeadsCount == 2)
        #expect(forms[1].expiredLeadsCount == 3)
    }

    @Test func noTokenReachesALogAnErrorARawPageOrTheFakesLog() async throws {
        let capture = LogCapture()
        let fake = try GraphFake(scenario: scenario {
            $0.appSecret = "s3cr3t-app"
            $0.faults = [.init(path: "/leads", onRequest: 2, kind: .http500), .init(path: "/leads", onRequest: 6, kind: .expireToken)]
        }, now: Self.now)
        var raw: [Data] = []
        let error = await #expect(throws: GraphError.self) {
            _ = try await client(fake, logger: capture.logger(), appSecret: "s3cr3t-app").leads(
                formID: "2001", window: LeadWindow(from: nil, to: Self.now), token: AccessToken(Self.token)) { raw.append($0.rawBody) }
        }
        #expect(error?.voidCause == .tokenExpired)
        #expect(!capture.lines.isEmpty, "the retry was logged")
        let texts = capture.lines + [error.map { "\($0.description) \($0.debugDescription)" } ?? ""]
            + raw.map { String(decoding: $0, as: UTF8.self) } + fake.requestLog.map { "\($0.path)?\($0.query)" }
        for text in texts {
            #expect(!text.contains(Self.token))
            #expect(!text.contains("s3cr3t-app"))
        }
        #expect(raw.first.map { String(decoding: $0, as: UTF8.self) }.map { $0.contains("\"next\"") && !$0.contains("access_token") } == true,
                "the next URL in the archived page has lost its token")
        #expect(fake.requestLog.allSatisfy { $0.hadAppSecretProof && !$0.query.contains("appsecret_proof") })
    }

    @Test func appSecretProofIsHexHMACSHA256OfTheToken() {
        // Reference value: python3 -c "import hmac,hashlib;print(hmac.new(b'secret',b'token',hashlib.sha256).hexdigest())"
        #expect(GraphClient.appSecretProof(token: AccessToken("token"), appSecret: "secret")
            == "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a")
    }

    @Test func formsAreReadConcurrentlyWithinTheBound() async throws {
        var scenario = scenario(count: 300)
        scenario.pages[0].forms += (2...8).map { .init(id: "200\($0)", name: "Form \($0)", generate: .init(count: 300, start: Self.start)) }
        scenario.latencyMilliseconds = 50
        let fake = try GraphFake(scenario: scenario, now: Self.now)
        let sink = CollectingSink()
        let outcome = try await ConnectionExtractor(client: try client(fake), concurrency: 4)
            .extract(pageID: "1001", token: AccessToken(Self.token), window: { _ in LeadWindow(from: nil, to: Self.now) }, sink: sink)
        guard case .completed(let forms, let summaries) = outcome else {
            Issue.record("expected completion, got \(outcome)")
            return
        }
        #expect(forms.count == 8)
        #expect(summaries.values.map(\.leads).reduce(0, +) == 2_400)
        #expect(Set(sink.pages.flatMap { $0.leads.map(\.id) }).count == 2_400)
        let leadRequests = fake.requestLog.filter { $0.path.hasSuffix("/leads") }
        // Sweep the intervals: the most requests the fake was serving at one instant.
        let events = leadRequests.flatMap { [($0.startedAt, 1), ($0.finishedAt, -1)] }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        var inFlight = 0
        let peak = events.map { inFlight += $0.1; return inFlight }.max() ?? 0
        #expect(peak > 1, "requests overlapped")
        #expect(peak <= 4, "no more than the concurrency bound at once")
    }
}

/// Keeps every page it receives.
final class CollectingSink: LeadPageSink, @unchecked Sendable {
    private let lock = NSLock()
    private var received: [LeadPage] = []
    var pages: [LeadPage] { lock.withLock { received } }
    func receive(_ page: LeadPage) async throws { lock.withLock { received.append(page) } }
}

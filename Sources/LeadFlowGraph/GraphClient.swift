import Crypto
import Foundation
import LeadFlowCore
import Logging

/// How the Graph client talks to Facebook (from the pipeline file).
public struct GraphClientConfiguration: Sendable {
    /// Scheme and host, e.g. `https://graph.facebook.com`; the only host ever contacted.
    public var baseURL: String
    public var apiVersion: String
    /// `limit` of each list request; halved when Graph asks to reduce the data.
    public var pageSize: Int
    /// When set, every request carries `appsecret_proof` (HMAC-SHA256 of the token).
    public var appSecret: String?
    public var retry: RetryPolicy
    public var requestTimeout: Duration
    /// Above this usage percentage, requests slow down before Graph starts refusing them.
    public var slowDownAbovePercent: Int

    public init(baseURL: String = "https://graph.facebook.com", apiVersion: String = "v25.0", pageSize: Int = 100,
                appSecret: String? = nil, retry: RetryPolicy = RetryPolicy(), requestTimeout: Duration = .seconds(60),
                slowDownAbovePercent: Int = 80) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiVersion = apiVersion
        self.pageSize = pageSize
        self.appSecret = appSecret
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.slowDownAbovePercent = slowDownAbovePercent
    }
}

/// One page of a form's leads as it arrived: parsed once (`GraphLeadPage`), and the raw
/// body (secrets redacted) for the archive.
public struct LeadPage: Sendable {
    public let formID: String
    /// 1-based, in the order the pages were read.
    public let number: Int
    public let leads: [GraphLead]
    /// Elements of the page that are no lead Graph would send: each becomes a rejection.
    public let malformed: [GraphLeadPage.Malformed]
    public let rawBody: Data

    public init(formID: String, number: Int, leads: [GraphLead], malformed: [GraphLeadPage.Malformed] = [], rawBody: Data) {
        self.formID = formID
        self.number = number
        self.leads = leads
        self.malformed = malformed
        self.rawBody = rawBody
    }
}

/// A page of any Graph list: how to read it from its bytes, and its paging.
protocol GraphListing {
    static func read(_ body: Data) throws -> Self
    var paging: GraphPaging? { get }
}

extension GraphList: GraphListing {
    static func read(_ body: Data) throws -> GraphList { try GraphJSON.decode(GraphList.self, from: body) }
}

extension GraphLeadPage: GraphListing {
    static func read(_ body: Data) throws -> GraphLeadPage { try GraphLeadPage.parse(body) }
}

/// What reading one form's window took.
public struct LeadStreamSummary: Sendable, Equatable {
    public var pages = 0
    public var leads = 0
    public var requests = 0
    /// The `limit` in force at the end (lower than configured if Graph asked to reduce).
    public var finalLimit = 0
}

/// The Graph API, read the way `GRAPH_API.md` says it behaves: cursor paging rebuilt
/// from `cursors.after` against the configured host (never a `next` URL), every failure
/// classified (retry, rate limit, void, fatal), usage headers obeyed.
public final class GraphClient: Sendable {
    let transport: any HTTPTransport
    let configuration: GraphClientConfiguration
    let logger: Logger
    let sleeper: any Sleeper
    let governor: UsageGovernor
    /// What this client's rate-limit waits may still take, all requests together: one
    /// client serves one run, so this is the run's bound (`graph.max_rate_limit_wait_seconds`).
    public let rateLimitBudget: RateLimitBudget

    /// - Parameter usageBoard: where the workers of one app share the usage Graph reports
    ///   (nil: this client's own reports only).
    public init(transport: any HTTPTransport, configuration: GraphClientConfiguration,
                logger: Logger = Logger(label: "leadflow.graph"), sleeper: any Sleeper = TaskSleeper(),
                usageBoard: (any UsageBoard)? = nil) {
        self.transport = transport
        self.configuration = configuration
        self.logger = logger
        self.sleeper = sleeper
        governor = UsageGovernor(board: usageBoard, logger: logger)
        rateLimitBudget = RateLimitBudget(limit: configuration.retry.maxRateLimitWait)
    }

    /// Every lead form of a Page, every status (ARCHIVED forms still receive leads).
    /// - Parameter first: the first page's body when a batch already read it.
    public func forms(pageID: String, token: AccessToken, first: Data? = nil) async throws -> [GraphForm] {
        var forms: [GraphForm] = []
        _ = try await paginate(path: "\(pageID)/leadgen_forms", query: [("fields", GraphFields.forms)], token: token,
                               context: "forms of page \(pageID)", first: first) { (page: GraphList<GraphForm>, _: Data) in
            forms.append(contentsOf: page.data)
        }
        return forms
    }

    /// Reads a form's leads created in `window`, handing each page on as it arrives, so
    /// memory does not grow with the number of leads. Pages handed on before a failure
    /// stay handed on: the caller keeps them.
    /// - Parameter first: the first page's body when a batch already read it.
    public func leads(formID: String, window: LeadWindow, token: AccessToken, first: Data? = nil,
                      onPage: (LeadPage) async throws -> Void) async throws -> LeadStreamSummary {
        var number = 0
        var count = 0
        var summary = try await paginate(path: "\(formID)/leads",
                                         query: [("fields", GraphFields.leads), ("filtering", window.filtering)],
                                         token: token, context: "leads of form \(formID)", first: first) { (page: GraphLeadPage, raw: Data) in
            number += 1
            count += page.leads.count + page.malformed.count
            try await onPage(LeadPage(formID: formID, number: number, leads: page.leads, malformed: page.malformed, rawBody: raw))
        }
        summary.leads = count
        return summary
    }

    /// Any single object (`debug_token`, `me/permissions`, a Page's `has_lead_access`, …).
    public func object<T: Decodable>(_ type: T.Type, path: String, query: [(name: String, value: String)] = [],
                                     token: AccessToken?, context: String) async throws -> T {
        var limit = 0
        var scoped = GraphUsage.none
        let (value, _, _, _) = try await fetch(path: path, query: query, token: token, context: context, limit: &limit, scoped: &scoped) {
            try GraphJSON.decode(T.self, from: $0)
        }
        return value
    }

    // MARK: - Paging

    /// Every page of a list, each handed on as it arrives. `first`, the first page's body
    /// read already (by a batch), stands for the first request when it reads as a page;
    /// otherwise the first page is asked for again the ordinary way.
    func paginate<Page: GraphListing>(
        path: String, query: [(name: String, value: String)], token: AccessToken, context: String, first: Data? = nil,
        onPage: (Page, Data) async throws -> Void
    ) async throws -> LeadStreamSummary {
        var summary = LeadStreamSummary()
        var limit = configuration.pageSize
        var after: String?
        var seenCursors: Set<String> = []
        // The Page's own usage (business use case, X-Page-Usage) paces this list only.
        var scoped = GraphUsage.none
        var prefetched = first.flatMap { body in (try? Page.read(body)).map { ($0, redactedBody(body)) } }
        while true {
            try Task.checkCancellation()
            var pageQuery = query
            if let after { pageQuery.append(("after", after)) }
            let page: Page, raw: Data, requests: Int
            var bodyLease: (any AnyObject & Sendable)?
            if let (ready, body) = prefetched {
                (page, raw, requests) = (ready, body, 0)
                prefetched = nil
            } else {
                (page, raw, requests, bodyLease) = try await fetch(path: path, query: pageQuery, token: token, context: context,
                                                                   limit: &limit, scoped: &scoped, read: Page.read)
            }
            summary.requests += requests
            summary.pages += 1
            try await onPage(page, raw)
            // The page's bytes count against the transport's buffer budget until it is dealt with.
            withExtendedLifetime(bodyLease) {}
            // The end is the absence of `next`, whatever the page's size.
            guard page.paging?.hasNext == true else { break }
            guard let cursor = page.paging?.cursors?.after, !cursor.isEmpty else {
                throw GraphError(kind: .malformed, message: "paging has next but no cursors.after", context: context)
            }
            guard seenCursors.insert(cursor).inserted else {
                throw GraphError(kind: .cursorLoop, message: "the same after cursor came back twice", context: context)
            }
            after = cursor
        }
        summary.finalLimit = limit
        return summary
    }

    // MARK: - One request, with retries

    /// GETs `path` until it answers, retrying what can be retried. `limit` (0: none) is
    /// halved in place when Graph asks for less data; `scoped` is the usage the last answer
    /// of the same list reported for its Page, and is updated. Returns the decoded body, the
    /// raw body with secrets redacted, how many requests it took, and the body's lease on
    /// the transport's buffer budget (hold it until the page is dealt with).
    private func fetch<T>(path: String, query: [(name: String, value: String)], token: AccessToken?, context: String,
                          limit: inout Int, scoped: inout GraphUsage,
                          read: (Data) throws -> T) async throws -> (T, Data, Int, (any AnyObject & Sendable)?) {
        var failures = 0
        var requests = 0
        var rateLimitHits = 0
        while true {
            try Task.checkCancellation()
            let appPause = await governor.pauseBeforeRequest(slowDownAbove: configuration.slowDownAbovePercent)
            let pagePause = UsageGovernor.pause(percent: scoped.percent, slowDownAbove: configuration.slowDownAbovePercent)
            if let pause = [appPause, pagePause].compactMap(\.self).max() {
                PassLiveness.waiting(pause)
                try await sleeper.sleep(for: pause)
            }
            let request = makeRequest(path: path, query: query, token: token, limit: limit)
            requests += 1
            GraphTally.request()
            let failure: any LeadFlowError
            var response: HTTPResponse
            do {
                response = try await transport.send(request)
                PassLiveness.tick() // an answer from Graph: the pass is alive
            } catch let error as any LeadFlowError {
                GraphTally.error(error.code)
                guard error.disposition == .retry else { throw error }
                // A timeout, a refused or truncated transfer.
                try await backOff(after: &failures, failure: error, context: context)
                continue
            }
            // The body's share of the transport's buffer budget goes with a page handed on; an
            // answer that is no page lets go of it at once, before any wait below (a lease
            // held through a rate-limit wait would hold every other transfer back).
            var bodyLease = response.bodyLease
            response.bodyLease = nil
            if !(200..<300).contains(response.status) { bodyLease = nil }
            let usage = GraphUsage.from(response)
            scoped = usage
            await governor.record(usage)
            // The query goes through redaction like any text that may be shown: no secret,
            // not even a secret parameter's name, reaches a log.
            logger.debug("graph request", metadata: [
                "graph.context": "\(context)", "graph.path": "\(path)",
                "graph.query": "\(URLRedaction.redact(URLQuery.encode(request.query)))",
                "http.status": "\(response.status)", "graph.usage": "\(usage.percent)"])
            if (200..<300).contains(response.status) {
                do {
                    let value = try read(response.body)
                    // The body is this function's alone now: redacted in place, not copied.
                    var body = response.body
                    response.body = Data()
                    URLRedaction.redact(owned: &body)
                    return (value, body, requests, bodyLease)
                } catch {
                    bodyLease = nil
                    failure = GraphError(kind: .malformed, httpStatus: response.status,
                                         message: "the body is not the expected JSON (\(response.body.count) bytes)", context: context)
                    GraphTally.error(failure.code)
                }
            } else {
                let error = GraphError.from(status: response.status, body: response.body, context: context)
                GraphTally.error(error.code)
                if error.voidCause != nil { throw error }
                if error.asksToReduceData, limit > 1 {
                    limit = max(1, limit / 2)
                    logger.notice("Graph asked for less data; halving the page size",
                                  metadata: ["graph.context": "\(context)", "graph.limit": "\(limit)"])
                    continue
                }
                if error.isRateLimit {
                    // Graph's own estimate when it gives one (business use cases); else an
                    // exponential backoff, so a long app-level limit ends the stream in bounded time.
                    rateLimitHits += 1
                    let wait = usage.regainAccessIn
                        ?? configuration.retry.delay(afterFailedAttempts: rateLimitHits, unit: Double.random(in: 0.5..<1))
                    // Graph's estimate comes with a Page's business use case: that Page's limit.
                    guard rateLimitBudget.take(wait, appWide: usage.regainAccessIn == nil) else {
                        logger.warning("Graph rate limit outlasts the run's wait budget; not waiting", metadata: [
                            "graph.context": "\(context)", "graph.code": "\(error.code)", "graph.wait": "\(wait)",
                            "graph.budget": "\(rateLimitBudget.limit)"])
                        throw error
                    }
                    GraphTally.rateLimitWait(wait)
                    logger.notice("Graph rate limit; waiting", metadata: [
                        "graph.context": "\(context)", "graph.code": "\(error.code)", "graph.wait": "\(wait)"])
                    // Waiting on Graph's word is no stall: the lease stays renewed meanwhile.
                    PassLiveness.waiting(wait)
                    try await sleeper.sleep(for: wait)
                    continue
                }
                failure = error
            }
            try await backOff(after: &failures, failure: failure, context: context)
        }
    }

    /// Counts a failure, throws it when it cannot be retried or attempts ran out, else waits.
    private func backOff(after failures: inout Int, failure: any LeadFlowError, context: String) async throws {
        failures += 1
        guard failure.disposition == .retry else { throw failure }
        guard failures < configuration.retry.maxAttempts else {
            throw GraphError(kind: .exhausted, message: "gave up after \(failures) attempts; last: \(failure.description)",
                             context: context)
        }
        let delay = configuration.retry.delay(afterFailedAttempts: failures, unit: Double.random(in: 0..<1))
        logger.info("retrying Graph request", metadata: [
            "graph.context": "\(context)", "graph.attempt": "\(failures + 1)", "graph.error": "\(failure.code)"])
        try await sleeper.sleep(for: delay)
    }

    /// The request for `path` on the configured host. The token travels in the
    /// Authorization header, so it is in no URL that an error or a log could quote.
    func makeRequest(path: String, query: [(name: String, value: String)], token: AccessToken?, limit: Int) -> HTTPRequest {
        var items = query
        if limit > 0 { items.append(("limit", String(limit))) }
        var headers: [(name: String, value: String)] = []
        if let token {
            headers.append(("Authorization", "Bearer \(token.secret)"))
            if let secret = configuration.appSecret {
                items.append(("appsecret_proof", Self.appSecretProof(token: token, appSecret: secret)))
            }
        }
        return HTTPRequest(url: "\(configuration.baseURL)/\(configuration.apiVersion)/\(path)", query: items, headers: headers,
                           timeout: configuration.requestTimeout)
    }

    /// Hex HMAC-SHA256 of the token keyed with the app secret.
    public static func appSecretProof(token: AccessToken, appSecret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(token.secret.utf8), using: SymmetricKey(data: Data(appSecret.utf8)))
        return Hex.lowercase(mac)
    }

    /// Graph's `next` URLs carry the token: the archived page must not.
    func redactedBody(_ body: Data) -> Data {
        URLRedaction.redact(utf8: body) ?? body
    }
}

/// The app's usage (`X-App-Usage`) as last reported, shared by every request of this
/// client, and through the board by every worker of the app, so all of them slow down
/// together as the app's quota fills. A Page's own usage and Graph's estimate of when a
/// throttled Page regains access stay with that Page's requests (`GraphUsage`): sharing
/// them would stop every Page of the app for one Page's limit.
actor UsageGovernor {
    private var usage = GraphUsage.none
    let board: (any UsageBoard)?
    let logger: Logger

    init(board: (any UsageBoard)?, logger: Logger) {
        self.board = board
        self.logger = logger
    }

    func record(_ usage: GraphUsage) async {
        self.usage = usage.appWide
        do { try await board?.publish(usage.appWide) } catch {
            // Sharing is a courtesy to the other workers; this one still obeys what it saw.
            logger.warning("could not share the Graph usage", metadata: ["error": "\(error)"])
        }
    }

    /// The pause before a request, from the app's usage this client or any worker saw.
    func pauseBeforeRequest(slowDownAbove threshold: Int) async -> Duration? {
        var percent = usage.appPercent
        if let shared = try? await board?.latest() { percent = max(percent, shared.appPercent) }
        return Self.pause(percent: percent, slowDownAbove: threshold)
    }

    /// A pause that grows from nothing at the threshold to 5 s at 100 %.
    static func pause(percent: Int, slowDownAbove threshold: Int) -> Duration? {
        guard percent > threshold else { return nil }
        let over = Double(min(percent, 100) - threshold) / Double(max(100 - threshold, 1))
        return .milliseconds(Int(over * 5000))
    }
}

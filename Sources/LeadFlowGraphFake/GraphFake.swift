import Foundation
import LeadFlowCore

/// The Graph API on loopback, playing a `GraphScenario`: forms, leads with `filtering` and
/// cursor paging (with `next` URLs that carry the token, as Facebook sends them),
/// `debug_token`, `me/permissions`, `me/accounts`, `has_lead_access`, the token exchange,
/// error envelopes with real messages, usage headers and faults on demand.
///
/// Its clock is `now`, set by the test or the demo, so 90-day stories run in seconds.
/// Every request is logged (without tokens) for tests to count and to check overlap.
public final class GraphFake: @unchecked Sendable {
    /// One request as the fake saw it. Tokens are never recorded: only which scenario
    /// token it was (its index), and the query with secrets redacted.
    public struct RequestRecord: Sendable, Codable {
        public let path: String
        public let query: String
        public let tokenIndex: Int?
        /// Seconds since the fake started, on a monotonic clock.
        public let startedAt: Double
        public let finishedAt: Double
        public let status: Int
        /// Whether the request carried `appsecret_proof` (its value is not kept).
        public let hadAppSecretProof: Bool
    }

    /// The real error envelopes (`fixtures/graph/errors/`), found from this file's path in the checkout.
    static let errorFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/graph/errors")

    public var baseURL: String { server.baseURL }
    public var port: Int { server.port }

    private var server: LoopbackHTTPServer!
    private let lock = NSLock()
    private let started = ContinuousClock.now
    // Guarded by `lock`.
    private var scenario: GraphScenario
    private var leadsByForm: [String: [GraphLead]] = [:]   // newest first
    /// Each form's `created_time`s, parallel to `leadsByForm` (nil: unparsable, sorted last),
    /// so a window is found by binary search: the fake must stay cheap at a million leads.
    private var createdByForm: [String: [Date?]] = [:]
    /// Each lead's JSON and instant, computed once: the fake must not be what a benchmark measures.
    private var leadJSONCache: [String: String] = [:]
    private var createdCache: [String: Date] = [:]
    private var formPage: [String: String] = [:]
    private var clock: Date
    private var log: [RequestRecord] = []
    private var faultMatches: [Int: Int] = [:]
    private var expiredTokens: Set<Int> = []
    private var exchangedTokens: [String: Int] = [:]
    private var appliedExpiries: Set<Int> = []
    private let logFile: FileHandle?

    /// - Parameter requestLog: where to append the request log as JSONL (optional).
    public init(scenario: GraphScenario, now: Date, requestLog: URL? = nil) throws {
        self.scenario = scenario
        self.clock = now
        if let requestLog {
            _ = FileManager.default.createFile(atPath: requestLog.path, contents: nil)
            logFile = try FileHandle(forWritingTo: requestLog)
        } else {
            logFile = nil
        }
        for page in scenario.pages {
            for form in page.forms {
                let leads = (form.leads ?? []) + (form.generate?.leads(formID: form.id) ?? [])
                leadsByForm[form.id] = leads
                reindex(form.id)
                formPage[form.id] = page.id
            }
        }
        applyDueExpiries()
        server = try LoopbackHTTPServer { [unowned self] request in self.handle(request) }
    }

    deinit { server?.stop() }

    public func stop() { server.stop() }

    // MARK: - Control (tests and the demo)

    /// The fake's "now": leads created after it are not yet visible, token events before it have happened.
    public var now: Date {
        get { lock.withLock { clock } }
        set {
            lock.withLock {
                clock = newValue
                applyDueExpiries()
            }
        }
    }

    public var requestLog: [RequestRecord] { lock.withLock { log } }

    /// Every lead of the form that Facebook would return now, newest first.
    public func leads(ofForm formID: String) -> [GraphLead] {
        lock.withLock { visibleLeads(formID) }
    }

    /// Every lead the fake would return now, across all forms.
    public func allVisibleLeads() -> [GraphLead] {
        lock.withLock { leadsByForm.keys.sorted().flatMap { visibleLeads($0) } }
    }

    public func addLeads(_ leads: [GraphLead], toForm formID: String) {
        lock.withLock {
            leadsByForm[formID] = (leadsByForm[formID] ?? []) + leads
            reindex(formID)
        }
    }

    /// Replaces a lead (same id) with a new version, as an edit in Facebook would.
    public func replaceLead(_ lead: GraphLead, inForm formID: String) {
        lock.withLock {
            guard let index = leadsByForm[formID]?.firstIndex(where: { $0.id == lead.id }) else { return }
            leadsByForm[formID]![index] = lead
            leadJSONCache[lead.id] = nil
            createdCache[lead.id] = nil
            reindex(formID)
        }
    }

    /// The scenario's lead expiries due at `clock`, applied once each, in order. Called with `lock` held.
    private func applyDueExpiries() {
        for (index, expiry) in scenario.leadExpiries.enumerated() where !appliedExpiries.contains(index) {
            guard let at = UTCTime.parse(expiry.at), at <= clock else { continue }
            appliedExpiries.insert(index)
            expire(ofForm: expiry.formID, createdFrom: expiry.createdFrom.flatMap(UTCTime.parse),
                   createdBefore: UTCTime.parse(expiry.createdBefore) ?? .distantPast)
        }
    }

    /// Facebook stops returning the form's leads created in `[createdFrom, createdBefore)`:
    /// they leave the lists and its `expired_leads_count` rises by their number.
    @discardableResult
    public func expireLeads(ofForm formID: String, createdFrom: Date? = nil, createdBefore: Date) -> Int {
        lock.withLock { expire(ofForm: formID, createdFrom: createdFrom, createdBefore: createdBefore) }
    }

    @discardableResult
    private func expire(ofForm formID: String, createdFrom: Date?, createdBefore: Date) -> Int {
        let expire = { (lead: GraphLead) -> Bool in
            guard let created = lead.createdAt else { return false }
            return created < createdBefore && createdFrom.map { created >= $0 } ?? true
        }
        let before = leadsByForm[formID]?.count ?? 0
        leadsByForm[formID]?.removeAll(where: expire)
        let expired = before - (leadsByForm[formID]?.count ?? 0)
        reindex(formID)
        for p in scenario.pages.indices {
            for f in scenario.pages[p].forms.indices where scenario.pages[p].forms[f].id == formID {
                scenario.pages[p].forms[f].expiredLeadsCount += expired
            }
        }
        return expired
    }

    public func setExpiredLeadsCount(_ count: Int, forForm formID: String) {
        lock.withLock {
            for p in scenario.pages.indices {
                for f in scenario.pages[p].forms.indices where scenario.pages[p].forms[f].id == formID {
                    scenario.pages[p].forms[f].expiredLeadsCount = count
                }
            }
        }
    }

    public func addFault(_ fault: GraphScenario.Fault) {
        lock.withLock { scenario.faults.append(fault) }
    }

    /// The faults stop; requests are answered normally again.
    public func clearFaults() {
        lock.withLock {
            scenario.faults.removeAll()
            faultMatches.removeAll()
        }
    }

    public func addTokenEvent(_ event: GraphScenario.TokenEvent, token: String) {
        lock.withLock {
            guard let index = scenario.tokens.firstIndex(where: { $0.token == token }) else { return }
            scenario.tokens[index].events.append(event)
        }
    }

    // MARK: - Serving

    private func handle(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Response {
        let begin = ContinuousClock.now
        var response = lock.withLock { route(request) }
        if let latency = lock.withLock({ scenario.latencyMilliseconds }), latency > 0 {
            response.delay = (response.delay ?? .zero) + .milliseconds(latency)
        }
        if let delay = response.delay {
            Thread.sleep(forTimeInterval: delay.timeInterval)
            response.delay = nil
        }
        let record = RequestRecord(
            path: request.path,
            query: URLRedaction.redact(URLQuery.encode(request.query)),
            tokenIndex: lock.withLock { tokenIndex(request) },
            startedAt: (begin - started).timeInterval, finishedAt: (ContinuousClock.now - started).timeInterval,
            status: response.status,
            hadAppSecretProof: request.queryValue("appsecret_proof") != nil)
        lock.withLock {
            log.append(record)
            if let logFile, var line = try? JSONEncoder().encode(record) {
                line.append(10)
                logFile.write(line)
            }
        }
        return response
    }

    /// Called with `lock` held.
    private func route(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Response {
        // The control endpoint, for a fake in another process: POST an ISO 8601 instant.
        if request.path == "/__fake/now", request.method == "POST" {
            guard let date = UTCTime.parse(String(decoding: request.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
                return .init(status: 400, body: Data("expected an ISO 8601 instant".utf8))
            }
            clock = date
            applyDueExpiries()
            return .json(#"{"now":"\#(UTCTime.iso8601(date))"}"#)
        }
        if request.path == "/__fake/latency", request.method == "POST" {
            // Benchmarks change the latency of a running fake: its Page tokens stay valid.
            guard let milliseconds = Int(String(decoding: request.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
                  milliseconds >= 0 else {
                return .init(status: 400, body: Data("expected milliseconds".utf8))
            }
            scenario.latencyMilliseconds = milliseconds
            return .json(#"{"latency_ms":\#(milliseconds)}"#)
        }
        let parts = request.path.split(separator: "/").map(String.init)
        guard parts.first == scenario.apiVersion else {
            return error("invalid_cursor_100", status: 400, message: "Unknown path components: \(request.path)")
        }
        let rest = Array(parts.dropFirst())
        if let fault = matchFault(request.path) {
            switch fault.kind {
            case .http500:
                return .init(status: 500, body: Data("<html>Internal Server Error</html>".utf8))
            case .graphError:
                var response = error(fault.fixture ?? "unknown_1", status: fault.status)
                if let minutes = fault.regainAccessMinutes {
                    response.headers.append(("X-Business-Use-Case-Usage",
                                             #"{"\#(rest.first ?? "0")":[{"type":"lead_retrieval","call_count":100,"total_cputime":10,"total_time":10,"estimated_time_to_regain_access":\#(minutes)}]}"#))
                }
                return response
            case .truncate:
                var response = answer(request, rest)
                response.truncateBodyAfter = response.body.count / 2
                return response
            case .invalidJSON:
                return .json(#"{"data":[{"id":"1","created_time":"2026-"#)
            case .latency:
                var response = answer(request, rest)
                response.delay = .milliseconds(fault.latencyMilliseconds ?? 1000)
                return response
            case .expireToken:
                if let index = tokenIndex(request) { expiredTokens.insert(index) }
            }
        }
        return answer(request, rest)
    }

    private func answer(_ request: LoopbackHTTPServer.Request, _ rest: [String]) -> LoopbackHTTPServer.Response {
        switch rest {
        case ["oauth", "access_token"]:
            return exchange(request)
        case ["debug_token"]:
            return debugToken(request)
        default:
            break
        }
        // Everything else needs a valid token.
        guard let index = tokenIndex(request) else { return error("invalid_token_190", status: 400) }
        if let failure = tokenFailure(index) { return failure }
        let token = scenario.tokens[index]
        switch rest {
        case ["me", "permissions"]:
            let declined = Set(happenedEvents(token).filter { $0.kind == .revokePermission }.compactMap(\.permission))
            let data = token.scopes.map { #"{"permission":"\#($0)","status":"\#(declined.contains($0) ? "declined" : "granted")"}"# }
            return ok(#"{"data":[\#(data.joined(separator: ","))]}"#)
        case ["me", "accounts"]:
            let pages = scenario.pages.filter { token.pages.contains($0.id) }.map {
                #"{"id":"\#($0.id)","name":"\#($0.name)","access_token":"\#(token.token)","tasks":["ADVERTISE","ANALYZE","CREATE_CONTENT","MESSAGING","MODERATE","MANAGE"]}"#
            }
            return ok(#"{"data":[\#(pages.joined(separator: ","))]}"#)
        case let path where path.count == 2 && path[1] == "leadgen_forms":
            guard token.pages.contains(path[0]), let page = scenario.pages.first(where: { $0.id == path[0] }) else {
                return error("object_missing_100_33", status: 400)
            }
            if let failure = permissionFailure(token) { return failure }
            return list(count: page.forms.count, request: request, path: request.path, token: token.token) { page.forms[$0].map(formJSON) }
        case let path where path.count == 2 && path[1] == "leads":
            guard let pageID = formPage[path[0]], token.pages.contains(pageID) else {
                return error("object_missing_100_33", status: 400)
            }
            if let failure = permissionFailure(token) { return failure }
            if let maxLimit = scenario.maxLimit, let limit = Int(request.queryValue("limit") ?? "25"), limit > maxLimit {
                return error("reduce_data_500", status: 500)
            }
            guard let window = parseFiltering(request.queryValue("filtering")) else {
                return error("invalid_cursor_100", status: 400, message: "(#100) Invalid filtering")
            }
            let range = windowRange(path[0], greaterThan: window.greaterThan, lessThan: window.lessThan)
            let leads = leadsByForm[path[0]] ?? []
            return list(count: range.count, request: request, path: request.path, token: token.token) { slice in
                leads[(range.lowerBound + slice.lowerBound)..<(range.lowerBound + slice.upperBound)].map(leadJSON)
            }
        case let path where path.count == 1:
            if let fields = request.queryValue("fields"), fields.hasPrefix("has_lead_access") {
                return leadAccess(pageID: path[0], token: token)
            }
            for (formID, leads) in leadsByForm {
                if let lead = leads.first(where: { $0.id == path[0] }), let pageID = formPage[formID], token.pages.contains(pageID) {
                    return ok(leadJSON(lead))
                }
            }
            return error("object_missing_100_33", status: 400)
        default:
            return error("object_missing_100_33", status: 400)
        }
    }

    // MARK: - Lists and paging

    /// A page of `items` from the `after` cursor, with `cursors` and a `next` URL that
    /// carries the access token (as Facebook's do) unless this is the last page.
    private func list(count: Int, request: LoopbackHTTPServer.Request, path: String, token: String,
                      render: (Range<Int>) -> [String]) -> LoopbackHTTPServer.Response {
        let limit = max(1, Int(request.queryValue("limit") ?? "25") ?? 25)
        var offset = 0
        if let after = request.queryValue("after") {
            guard let decoded = Data(base64Encoded: after).flatMap({ String(data: $0, encoding: .utf8) }),
                  decoded.hasPrefix("offset:"), let value = Int(decoded.dropFirst(7)), value <= count else {
                return error("invalid_cursor_100", status: 400)
            }
            offset = value
        }
        let pageNumber = offset / limit + 1
        var size = limit
        if let every = scenario.shortPageEvery, every > 0, pageNumber % every == 0 { size = max(1, limit / 2) }
        let end = min(count, offset + size)
        let slice = render(offset..<end)
        var paging = #""cursors":{"before":"\#(cursor(offset))","after":"\#(cursor(end))"}"#
        if end < count {
            let host = scenario.nextURLHost ?? baseURL
            var query = request.query.filter { $0.name != "after" && $0.name != "access_token" }
            query.insert(("access_token", token), at: 0)
            query.append(("after", cursor(end)))
            paging += #","next":"\#(host)\#(path)?\#(URLQuery.encode(query))""#
        }
        return ok(#"{"data":[\#(slice.joined(separator: ","))],"paging":{\#(paging)}}"#)
    }

    private func cursor(_ offset: Int) -> String { Data("offset:\(offset)".utf8).base64EncodedString() }

    private func parseFiltering(_ text: String?) -> (greaterThan: Int64?, lessThan: Int64?)? {
        guard let text else { return (nil, nil) }
        guard let clauses = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else { return nil }
        var result: (greaterThan: Int64?, lessThan: Int64?) = (nil, nil)
        for clause in clauses {
            guard clause["field"] as? String == "time_created", let value = (clause["value"] as? NSNumber)?.int64Value else { return nil }
            switch clause["operator"] as? String {
            case "GREATER_THAN": result.greaterThan = value
            case "LESS_THAN": result.lessThan = value
            default: return nil
            }
        }
        return result
    }

    private func visibleLeads(_ formID: String) -> [GraphLead] {
        let range = windowRange(formID, greaterThan: nil, lessThan: nil)
        return Array((leadsByForm[formID] ?? [])[range])
    }

    /// Sorts a form's leads newest first and rebuilds its instants.
    private func reindex(_ formID: String) {
        let sorted = (leadsByForm[formID] ?? []).sorted { ($0.createdAt ?? .distantPast, $0.id) > ($1.createdAt ?? .distantPast, $1.id) }
        leadsByForm[formID] = sorted
        createdByForm[formID] = sorted.map(\.createdAt)
    }

    /// The indexes of the leads visible now (created at or before `clock`) whose second is
    /// strictly between the bounds. Leads are newest first, so the range is contiguous.
    private func windowRange(_ formID: String, greaterThan: Int64?, lessThan: Int64?) -> Range<Int> {
        let created = createdByForm[formID] ?? []
        func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }
        /// First index where `predicate` turns true (it is false, then true, along the array).
        func boundary(_ predicate: (Date?) -> Bool) -> Int {
            var low = 0, high = created.count
            while low < high {
                let middle = (low + high) / 2
                if predicate(created[middle]) { high = middle } else { low = middle + 1 }
            }
            return low
        }
        let first = boundary { date in
            guard let date else { return true }
            return date <= clock && (lessThan.map { seconds(date) < $0 } ?? true)
        }
        let end = boundary { date in
            guard let date else { return true }
            return greaterThan.map { seconds(date) <= $0 } ?? false
        }
        return first..<max(first, end)
    }

    private func createdAt(_ lead: GraphLead) -> Date? {
        if let cached = createdCache[lead.id] { return cached }
        let date = lead.createdAt
        createdCache[lead.id] = date
        return date
    }

    private func formJSON(_ form: GraphScenario.Form) -> String {
        let visible = visibleLeads(form.id)
        let organic = visible.filter { $0.isOrganic == true }.count
        return #"{"id":"\#(form.id)","name":\#(jsonString(form.name)),"status":"\#(form.status)","locale":"\#(form.locale ?? "en_US")","created_time":"\#(form.createdTime ?? "2026-01-01T00:00:00+0000")","leads_count":\#(visible.count + form.expiredLeadsCount),"organic_leads_count":\#(organic),"expired_leads_count":\#(form.expiredLeadsCount)}"#
    }

    private func leadJSON(_ lead: GraphLead) -> String {
        if let cached = leadJSONCache[lead.id] { return cached }
        let json = String(decoding: (try? JSONEncoder().encode(lead)) ?? Data("{}".utf8), as: UTF8.self)
        leadJSONCache[lead.id] = json
        return json
    }

    // MARK: - Tokens

    private func tokenIndex(_ request: LoopbackHTTPServer.Request) -> Int? {
        var text = request.queryValue("access_token")
        if let header = request.header("Authorization"), header.hasPrefix("Bearer ") { text = String(header.dropFirst(7)) }
        guard let text else { return nil }
        if let index = scenario.tokens.firstIndex(where: { $0.token == text }) { return index }
        return exchangedTokens[text]
    }

    private func happenedEvents(_ token: GraphScenario.Token) -> [GraphScenario.TokenEvent] {
        token.events.filter { (UTCTime.parse($0.at) ?? .distantFuture) <= clock }
    }

    /// 190 when the token is expired or invalidated at the fake's `now`.
    private func tokenFailure(_ index: Int) -> LoopbackHTTPServer.Response? {
        let token = scenario.tokens[index]
        let events = happenedEvents(token)
        if events.contains(where: { $0.kind == .invalidate }) { return error("password_changed_460", status: 400) }
        let expired = expiredTokens.contains(index) || events.contains(where: { $0.kind == .expire })
            || (token.expiresAt.flatMap(UTCTime.parse).map { $0 <= clock } ?? false)
        return expired ? error("token_expired_463", status: 400) : nil
    }

    private func permissionFailure(_ token: GraphScenario.Token) -> LoopbackHTTPServer.Response? {
        let events = happenedEvents(token)
        if events.contains(where: { $0.kind == .loseLeadAccess }) { return error("object_missing_100_33", status: 400) }
        if events.contains(where: { $0.kind == .revokePermission && $0.permission == "leads_retrieval" }) {
            return error("permission_200", status: 403)
        }
        return nil
    }

    private func debugToken(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Response {
        guard request.queryValue("access_token") == "\(scenario.appID)|\(scenario.appSecret)"
                || request.header("Authorization") == "Bearer \(scenario.appID)|\(scenario.appSecret)" else {
            return error("invalid_token_190", status: 400)
        }
        let input = request.queryValue("input_token") ?? ""
        guard let index = scenario.tokens.firstIndex(where: { $0.token == input }) ?? exchangedTokens[input] else {
            return ok(#"{"data":{"is_valid":false,"error":{"code":190,"message":"Invalid OAuth access token."},"scopes":[]}}"#)
        }
        let token = scenario.tokens[index]
        let valid = tokenFailure(index) == nil
        let declined = Set(happenedEvents(token).filter { $0.kind == .revokePermission }.compactMap(\.permission))
        let scopes = token.scopes.filter { !declined.contains($0) }.map { "\"\($0)\"" }.joined(separator: ",")
        let epoch: (String?) -> Int64 = { $0.flatMap(UTCTime.parse).map { Int64($0.timeIntervalSince1970) } ?? 0 }
        let targets = token.pages.map { "\"\($0)\"" }.joined(separator: ",")
        var data = #""app_id":"\#(scenario.appID)","type":"\#(token.type)","application":"LeadFlow test app","user_id":"\#(token.userID)","issued_at":\#(epoch(token.issuedAt)),"expires_at":\#(epoch(token.expiresAt)),"data_access_expires_at":\#(epoch(token.dataAccessExpiresAt)),"is_valid":\#(valid),"scopes":[\#(scopes)],"granular_scopes":[{"scope":"leads_retrieval","target_ids":[\#(targets)]},{"scope":"pages_show_list","target_ids":[\#(targets)]}]"#
        if !valid { data += #","error":{"code":190,"message":"Session has expired","subcode":463}"# }
        return ok("{\"data\":{\(data)}}")
    }

    private func leadAccess(pageID: String, token: GraphScenario.Token) -> LoopbackHTTPServer.Response {
        guard token.pages.contains(pageID) else { return error("object_missing_100_33", status: 400) }
        let lost = happenedEvents(token).contains { $0.kind == .loseLeadAccess }
        let revoked = happenedEvents(token).contains { $0.kind == .revokePermission && $0.permission == "leads_retrieval" }
        let canAccess = !lost && !revoked
        var body = #"{"has_lead_access":{"can_access_lead":\#(canAccess),"user_has_leads_permission":\#(!lost),"app_has_leads_permission":\#(!revoked),"is_page_admin":\#(!lost),"enabled_lead_access_manager":false"#
        if !canAccess {
            body += #","failure_reason":"The user does not have permission to access leads on this Page.","failure_resolution":"Ask a Page admin to grant the user a task that allows leads access, or add them in the Leads Access Manager.""#
        }
        return ok(body + #"},"id":"\#(pageID)"}"#)
    }

    private func exchange(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Response {
        guard request.queryValue("grant_type") == "fb_exchange_token", request.queryValue("client_id") == scenario.appID,
              request.queryValue("client_secret") == scenario.appSecret,
              let short = request.queryValue("fb_exchange_token"),
              let index = scenario.tokens.firstIndex(where: { $0.token == short }) else {
            return error("invalid_token_190", status: 400)
        }
        let long = "\(short)-long"
        exchangedTokens[long] = index
        return ok(#"{"access_token":"\#(long)","token_type":"bearer","expires_in":5184000}"#)
    }

    // MARK: - Answers

    private func matchFault(_ path: String) -> GraphScenario.Fault? {
        for (index, fault) in scenario.faults.enumerated() where path.contains(fault.path) {
            let count = (faultMatches[index] ?? 0) + 1
            faultMatches[index] = count
            if count >= fault.onRequest && count < fault.onRequest + fault.times { return fault }
        }
        return nil
    }

    /// A 200 with `X-App-Usage`: the share of `callsPerMinuteQuota` used over the last
    /// minute (Graph's quotas are rolling windows), or a steady 1 % without a quota.
    private func ok(_ json: String) -> LoopbackHTTPServer.Response {
        var percent = 1
        if let quota = scenario.callsPerMinuteQuota, quota > 0 {
            let since = (ContinuousClock.now - started).timeInterval - 60
            let recent = log.reversed().prefix { $0.startedAt >= since }.count
            percent = min(100, recent * 100 / quota)
        }
        return .json(json, headers: [("X-App-Usage", #"{"call_count":\#(percent),"total_cputime":1,"total_time":1}"#)])
    }

    private func error(_ fixture: String, status: Int, message: String? = nil) -> LoopbackHTTPServer.Response {
        var body = (try? Data(contentsOf: Self.errorFixtures.appendingPathComponent("\(fixture).json"))) ?? Data(#"{"error":{"code":1}}"#.utf8)
        if let message { body = Data(#"{"error":{"message":\#(jsonString(message)),"type":"OAuthException","code":100}}"#.utf8) }
        return .init(status: status, headers: [("Content-Type", "application/json; charset=UTF-8"),
                                               ("WWW-Authenticate", "OAuth \"Facebook Platform\" \"invalid_token\"")], body: body)
    }

    private func jsonString(_ text: String) -> String {
        String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

}

import Foundation
import LeadFlowCore

/// The Graph API on loopback, playing a `GraphScenario` as Facebook documents it (and as
/// Meta's own SDK expects it: `Tests/GraphConformance` drives it with `facebook-business`):
/// Pages, forms and leads with `fields` (only what was asked; an unknown field refused;
/// edges expanded inside `fields`), cursor paging both ways with `next`/`previous` URLs that
/// carry the token as Facebook's do, `filtering`, batch requests, the token lifecycle
/// (`TokenBook`), `appsecret_proof` checked, usage headers by token kind, error envelopes
/// with `fbtrace_id`, and faults on demand.
///
/// Its clock is `now`, set by the test or the demo, so 90-day stories run in seconds.
/// Every request is logged (without tokens) for tests to count and to check overlap.
public final class GraphFake: @unchecked Sendable {
    /// One request as the fake saw it. Tokens are never recorded: only which scenario
    /// token it descends from (its index), its kind, and the query with secrets redacted.
    public struct RequestRecord: Sendable, Codable {
        public let path: String
        public let query: String
        public let tokenIndex: Int?
        /// USER, PAGE or APP; nil without a token the fake knows.
        public let tokenType: String?
        /// Seconds since the fake started, on a monotonic clock.
        public let startedAt: Double
        public let finishedAt: Double
        public let status: Int
        /// Whether the request carried `appsecret_proof` (its value is not kept).
        public let hadAppSecretProof: Bool
        /// One call of a batch request (the batch itself is logged too, as `POST /`).
        public let batched: Bool
        /// The Page whose business-use-case quota the call counts against (Page tokens).
        public let pageID: String?
    }

    public var baseURL: String { server.baseURL }
    public var port: Int { server.port }

    private var server: LoopbackHTTPServer!
    private let lock = NSLock()
    private let started = ContinuousClock.now
    // Guarded by `lock`.
    private var scenario: GraphScenario
    private var tokens: TokenBook
    private var leadsByForm: [String: [GraphLead]] = [:]   // newest first
    /// Each form's `created_time`s, parallel to `leadsByForm` (nil: unparsable, sorted last),
    /// so a window is found by binary search: the fake must stay cheap at a million leads.
    private var createdByForm: [String: [Date?]] = [:]
    /// Each lead's JSON members, built once: the fake must not be what a benchmark measures.
    private var leadMembers: [String: [String: String]] = [:]
    private var formPage: [String: String] = [:]
    /// Leads served as given bytes instead of rendered (`serveRaw`).
    private var rawLeads: [String: String] = [:]
    private var clock: Date
    private var log: [RequestRecord] = []
    private var faultMatches: [Int: Int] = [:]
    private var appliedExpiries: Set<Int> = []
    /// Leads created but not indexed yet, with the instant Graph starts returning each.
    private var unindexedByForm: [String: [(lead: GraphLead, indexedAt: Date)]] = [:]
    private let logFile: FileHandle?

    /// - Parameter requestLog: where to append the request log as JSONL (optional).
    public init(scenario: GraphScenario, now: Date, requestLog: URL? = nil) throws {
        self.scenario = scenario
        self.clock = now
        tokens = try TokenBook(scenario: scenario, start: now)
        if let requestLog {
            _ = FileManager.default.createFile(atPath: requestLog.path, contents: nil, attributes: [.posixPermissions: 0o600])
            logFile = try FileHandle(forWritingTo: requestLog)
        } else {
            logFile = nil
        }
        for page in scenario.pages {
            for form in page.forms {
                let leads = (form.leads ?? []) + (form.generate?.leads(formID: form.id) ?? [])
                let late = form.generate?.indexedAt(formID: form.id) ?? [:]
                leadsByForm[form.id] = leads.filter { late[$0.id] == nil }
                unindexedByForm[form.id] = leads.compactMap { lead in late[lead.id].map { (lead, $0) } }
                reindex(form.id)
                formPage[form.id] = page.id
            }
        }
        applyDueIndexing()
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
                applyDueIndexing()
                applyDueExpiries()
            }
        }
    }

    public var requestLog: [RequestRecord] { lock.withLock { log } }

    /// The latency added to every answer from now on (as `POST /__fake/latency` sets it).
    public func setLatency(milliseconds: Int) {
        lock.withLock { scenario.latencyMilliseconds = milliseconds }
    }

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

    /// Serves this JSON, verbatim, in place of the lead's own wherever a list of leads
    /// holds it: a fault for the hostile-input tests (a lead missing a key, a value of the
    /// wrong type), which Graph does not document but a client must survive. The lead keeps
    /// its place in its form (its `created_time` decides the windows it falls in).
    public func serveRaw(_ json: String, forLead leadID: String) {
        lock.withLock { rawLeads[leadID] = json }
    }

    /// Replaces a lead (same id) with a new version, as an edit in Facebook would.
    public func replaceLead(_ lead: GraphLead, inForm formID: String) {
        lock.withLock {
            guard let index = leadsByForm[formID]?.firstIndex(where: { $0.id == lead.id }) else { return }
            leadsByForm[formID]![index] = lead
            leadMembers[lead.id] = nil
            reindex(formID)
        }
    }

    /// Late leads whose indexing instant has come join their form's lists. Called with `lock` held.
    private func applyDueIndexing() {
        for (formID, pending) in unindexedByForm where pending.contains(where: { $0.indexedAt <= clock }) {
            leadsByForm[formID] = (leadsByForm[formID] ?? []) + pending.filter { $0.indexedAt <= clock }.map(\.lead)
            unindexedByForm[formID] = pending.filter { $0.indexedAt > clock }
            reindex(formID)
        }
    }

    /// Adds leads that Graph returns only from `indexedAt` on (a late index), though they
    /// were created earlier; `leads_count` may count them before (`countsLeadsBeforeIndexing`).
    public func addLeads(_ leads: [GraphLead], toForm formID: String, indexedAt: Date) {
        lock.withLock {
            unindexedByForm[formID, default: []] += leads.map { ($0, indexedAt) }
            applyDueIndexing()
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
        updateForm(formID) { $0.expiredLeadsCount += expired }
        return expired
    }

    public func setExpiredLeadsCount(_ count: Int, forForm formID: String) {
        lock.withLock { updateForm(formID) { $0.expiredLeadsCount = count } }
    }

    private func updateForm(_ formID: String, _ change: (inout GraphScenario.Form) -> Void) {
        for p in scenario.pages.indices {
            for f in scenario.pages[p].forms.indices where scenario.pages[p].forms[f].id == formID {
                change(&scenario.pages[p].forms[f])
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

    /// An event on a scenario token; it reaches every token minted from it.
    public func addTokenEvent(_ event: GraphScenario.TokenEvent, token: String) {
        lock.withLock { tokens.addEvent(event, toScenarioToken: token) }
    }

    /// A token the Connector Authenticator gets while the story runs (a reauthentication).
    public func issueToken(_ token: GraphScenario.Token) throws {
        try lock.withLock { try tokens.issue(token, start: clock) }
    }

    /// What `debug_token` would say of a token's kind and Page (tests: which token did the product keep?).
    public func describeToken(_ token: String) -> (type: String, pageID: String?, expiresAt: Date?)? {
        lock.withLock {
            tokens.grant(token).map { ($0.kind.rawValue, $0.pageID, $0.expiresAt) }
        }
    }

    // MARK: - Serving

    /// One Graph call, from an HTTP request or from an element of a batch.
    struct Call {
        let method: String
        /// `/v25.0/1001/leads`, as asked.
        let path: String
        /// The path after the version: `["1001", "leads"]`.
        let parts: [String]
        /// Query and form-body parameters, in order.
        let params: [(name: String, value: String)]
        let bearer: String?
        let batched: Bool

        func value(_ name: String) -> String? { params.first { $0.name == name }?.value }
        var accessToken: String? { value("access_token") ?? bearer }
        var version: String? {
            let first = path.split(separator: "/").first.map(String.init)
            return first.flatMap { GraphFake.isVersion($0) ? $0 : nil }
        }
    }

    static func isVersion(_ text: String) -> Bool {
        guard text.hasPrefix("v") else { return false }
        let number = text.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
        return number.count == 2 && number.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    static func call(method: String, target path: String, params: [(name: String, value: String)], bearer: String?,
                     batched: Bool) -> Call {
        var parts = path.split(separator: "/").map(String.init)
        if let first = parts.first, isVersion(first) { parts.removeFirst() }
        return Call(method: method, path: path, parts: parts, params: params, bearer: bearer, batched: batched)
    }

    private func handle(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Response {
        let begin = ContinuousClock.now
        if request.path.hasPrefix("/__fake/") { return lock.withLock { control(request) } }
        var params = request.query
        if request.method == "POST", let form = URLQuery.decode(Substring(String(decoding: request.body, as: UTF8.self))) {
            params += form
        }
        var bearer: String?
        if let header = request.header("Authorization"), header.hasPrefix("Bearer ") { bearer = String(header.dropFirst(7)) }
        let call = Self.call(method: request.method, target: request.path, params: params, bearer: bearer, batched: false)
        var response = lock.withLock { () -> LoopbackHTTPServer.Response in
            if call.method == "POST", call.parts.isEmpty, call.value("batch") != nil { return batch(call, begin: begin) }
            return serve(call)
        }
        if let latency = lock.withLock({ scenario.latencyMilliseconds }), latency > 0 {
            response.delay = (response.delay ?? .zero) + .milliseconds(latency)
        }
        if let delay = response.delay {
            Thread.sleep(forTimeInterval: delay.timeInterval)
            response.delay = nil
        }
        lock.withLock { record(call, status: response.status, begin: begin) }
        return response
    }

    /// Logs a call. Called with `lock` held.
    private func record(_ call: Call, status: Int, begin: ContinuousClock.Instant) {
        let grant = call.accessToken.flatMap { tokens.grant($0) }
        let isApp = call.accessToken.map(tokens.isAppToken) ?? false
        let query = call.params.filter { $0.name != "batch" }
        let entry = RequestRecord(
            path: call.path, query: URLRedaction.redact(URLQuery.encode(query)), tokenIndex: grant?.origin,
            tokenType: grant?.kind.rawValue ?? (isApp ? "APP" : nil),
            startedAt: (begin - started).timeInterval, finishedAt: (ContinuousClock.now - started).timeInterval,
            status: status, hadAppSecretProof: call.value("appsecret_proof") != nil, batched: call.batched,
            pageID: grant?.kind == .page ? grant?.pageID : nil)
        log.append(entry)
        if let logFile, var line = try? JSONEncoder().encode(entry) {
            line.append(10)
            logFile.write(line)
        }
    }

    /// The control endpoints, for a fake in another process. Called with `lock` held.
    private func control(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Response {
        let text = String(decoding: request.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        switch (request.method, request.path) {
        case ("POST", "/__fake/now"):
            guard let date = UTCTime.parse(text) else { return .init(status: 400, body: Data("expected an ISO 8601 instant".utf8)) }
            clock = date
            applyDueIndexing()
            applyDueExpiries()
            return .json(#"{"now":"\#(UTCTime.iso8601(date))"}"#)
        case ("POST", "/__fake/latency"):
            // Benchmarks change the latency of a running fake: its Page tokens stay valid.
            guard let milliseconds = Int(text), milliseconds >= 0 else { return .init(status: 400, body: Data("expected milliseconds".utf8)) }
            scenario.latencyMilliseconds = milliseconds
            return .json(#"{"latency_ms":\#(milliseconds)}"#)
        default:
            return .init(status: 404, body: Data("unknown control endpoint".utf8))
        }
    }

    /// One call: faults first, then the answer. Called with `lock` held.
    private func serve(_ call: Call) -> LoopbackHTTPServer.Response {
        if let fault = matchFault(call.path) {
            switch fault.kind {
            case .http500:
                return .init(status: 500, headers: [("Content-Type", "text/html")], body: Data("<html>Internal Server Error</html>".utf8))
            case .graphError:
                var answer = GraphErrors.catalogue[fault.fixture ?? "unknown_1"] ?? GraphErrors.catalogue["unknown_1"]!
                answer.status = fault.status
                return respond(answer, call: call, rateLimited: true, regainMinutes: fault.regainAccessMinutes)
            case .truncate:
                var response = answer(call)
                response.truncateBodyAfter = response.body.count / 2
                return response
            case .invalidJSON:
                return .json(#"{"data":[{"id":"1","created_time":"2026-"#)
            case .latency:
                var response = answer(call)
                response.delay = .milliseconds(fault.latencyMilliseconds ?? 1000)
                return response
            case .expireToken:
                if let token = call.accessToken { tokens.forceExpiry(token) }
            }
        }
        return answer(call)
    }

    /// An error answer. Rate-limit codes carry the usage header Graph sends with them, at 100 %.
    private func respond(_ answer: GraphErrorAnswer, call: Call, rateLimited: Bool = false,
                         regainMinutes: Int? = nil) -> LoopbackHTTPServer.Response {
        var headers = answer.headers
        if rateLimited {
            switch answer.code {
            case 4, 17:
                headers.append(("X-App-Usage", #"{"call_count":100,"total_cputime":12,"total_time":20}"#))
            case 32, 613, 80001, 80005:
                let id = call.accessToken.flatMap { tokens.grant($0)?.pageID } ?? call.parts.first ?? "0"
                let type = answer.code == 80005 ? "leadgen" : "pages"
                headers.append(("X-Business-Use-Case-Usage",
                                #"{"\#(id)":[{"type":"\#(type)","call_count":100,"total_cputime":10,"total_time":10,"estimated_time_to_regain_access":\#(regainMinutes ?? 0)}]}"#))
            default:
                break
            }
        }
        return .init(status: answer.status, headers: headers, body: answer.body())
    }

    private func respond(_ answer: GraphErrorAnswer, _ call: Call) -> LoopbackHTTPServer.Response { respond(answer, call: call) }

    // MARK: - Routing

    private func answer(_ call: Call) -> LoopbackHTTPServer.Response {
        if call.parts == ["oauth", "access_token"] { return exchange(call) }
        if call.parts == ["debug_token"] { return debugToken(call) }
        guard let token = call.accessToken else {
            return respond(.init(status: 400, code: 104, type: "OAuthException", message: "An access token is required to request this resource."), call)
        }
        if tokens.isAppToken(token) {
            // An app token reads no Page, form or lead.
            return respond(GraphErrors.objectMissing(id: call.parts.first ?? "me"), call)
        }
        guard let grant = tokens.grant(token) else { return respond(GraphErrors.catalogue["invalid_token_190"]!, call) }
        if let refusal = proofRefusal(call, token: token) { return respond(refusal, call) }
        if let failure = tokens.failure(grant, now: clock) { return respond(failure, call) }
        guard call.method == "GET" else {
            return respond(GraphErrors.objectMissing(id: call.parts.first ?? "", method: call.method.lowercased()), call)
        }
        guard let nodeID = call.parts.first else { return respond(GraphErrors.unknownPath("/"), call) }
        let node: Node
        switch resolve(nodeID, grant: grant) {
        case .success(let found): node = found
        case .failure(let answer): return respond(answer, call)
        }
        let result: Result<String, GraphErrorAnswer>
        switch call.parts.count {
        case 1:
            result = render(node, fields: call.value("fields"), grant: grant, call: call)
        case 2:
            result = edge(call.parts[1], of: node, grant: grant, fields: call.value("fields"), modifiers: edgeParameters(call),
                          call: call, asField: false)
        default:
            result = .failure(GraphErrors.unknownPath("/" + call.parts.dropFirst(2).joined(separator: "/")))
        }
        switch result {
        case .success(let json): return ok(json, call: call, grant: grant)
        case .failure(let answer): return respond(answer, call)
        }
    }

    /// A wrong `appsecret_proof` is refused whatever the app's settings; a missing one when
    /// the app requires it (user and Page tokens; app tokens carry the secret themselves).
    private func proofRefusal(_ call: Call, token: String) -> GraphErrorAnswer? {
        if let proof = call.value("appsecret_proof") {
            return tokens.proofMatches(proof, token: token, time: call.value("appsecret_time"), now: clock)
                ? nil : GraphErrors.invalidAppSecretProof
        }
        if scenario.requireAppSecretProof, !tokens.isAppToken(token) { return GraphErrors.appSecretProofRequired }
        return nil
    }

    /// `limit`, `after`, `before`, `filtering` of a top-level edge read.
    private func edgeParameters(_ call: Call) -> [String: String] {
        var modifiers: [String: String] = [:]
        for name in ["limit", "after", "before", "filtering"] { modifiers[name] = call.value(name) }
        return modifiers
    }

    // MARK: - Nodes

    enum Node {
        case page(GraphScenario.Page)
        case form(GraphScenario.Form, pageID: String)
        case lead(GraphLead, formID: String)
        case user(GraphScenario.Token)

        var type: NodeType {
            switch self {
            case .page: return .page
            case .form: return .leadgenForm
            case .lead: return .lead
            case .user: return .user
            }
        }

        var id: String {
            switch self {
            case .page(let page): return page.id
            case .form(let form, _): return form.id
            case .lead(let lead, _): return lead.id
            case .user(let token): return token.userID
            }
        }
    }

    /// The object an id names, if the token may see it; Graph answers 100/33 otherwise.
    private func resolve(_ id: String, grant: TokenBook.Grant) -> Result<Node, GraphErrorAnswer> {
        let reach = tokens.pages(grant)
        let missing = GraphErrors.objectMissing(id: id)
        if id == "me" {
            if grant.kind == .page, let page = scenario.pages.first(where: { $0.id == grant.pageID }) { return .success(.page(page)) }
            return .success(.user(tokens.origin(of: grant)))
        }
        if let page = scenario.pages.first(where: { $0.id == id }) {
            return reach.contains(id) ? .success(.page(page)) : .failure(missing)
        }
        if let pageID = formPage[id], let form = scenario.pages.first(where: { $0.id == pageID })?.forms.first(where: { $0.id == id }) {
            return reach.contains(pageID) ? .success(.form(form, pageID: pageID)) : .failure(missing)
        }
        if grant.kind == .user, id == tokens.origin(of: grant).userID { return .success(.user(tokens.origin(of: grant))) }
        for (formID, _) in leadsByForm {
            if let lead = visibleLeads(formID).first(where: { $0.id == id }), let pageID = formPage[formID] {
                guard reach.contains(pageID) else { return .failure(missing) }
                if let refusal = leadsRefusal(grant) { return .failure(refusal) }
                return .success(.lead(lead, formID: formID))
            }
        }
        return .failure(missing)
    }

    /// Reading leads needs `leads_retrieval` (#200) and lead access on the Page (100/33).
    private func leadsRefusal(_ grant: TokenBook.Grant) -> GraphErrorAnswer? {
        if tokens.lostLeadAccess(grant, now: clock) { return GraphErrors.objectMissing(id: tokens.pages(grant).first ?? "") }
        if !tokens.scopes(grant, now: clock).granted.contains("leads_retrieval") { return GraphErrors.catalogue["permission_200"] }
        return nil
    }

    /// A node with the fields asked for (its type's defaults without `fields`), edges
    /// expanded in place, an unknown field refused.
    private func render(_ node: Node, fields text: String?, grant: TokenBook.Grant, call: Call,
                        context: String? = nil) -> Result<String, GraphErrorAnswer> {
        let requests: [FieldRequest]
        if let text {
            guard let parsed = FieldRequest.parseList(text) else {
                return .failure(GraphErrors.invalidParameter("Syntax error \"Expected end of string instead of \\\"\(text.prefix(20))\\\".\" at character 0: \(text)"))
            }
            requests = parsed
        } else {
            requests = node.type.defaultFields.map { FieldRequest(name: $0) }
        }
        return render(node, requests: requests, grant: grant, call: call, context: context)
    }

    private func render(_ node: Node, requests: [FieldRequest], grant: TokenBook.Grant, call: Call,
                        context: String? = nil) -> Result<String, GraphErrorAnswer> {
        // `tasks` is a field of a Page only as an entry of the user's `accounts`.
        let allowed = node.type.fields.union(node.type.edges).union(context == "accounts" ? ["tasks"] : [])
        if let unknown = requests.first(where: { !allowed.contains($0.name) }) {
            return .failure(GraphErrors.nonexistingField(unknown.name, on: node.type))
        }
        var members: [String] = []
        for request in requests {
            if node.type.edges.contains(request.name) {
                switch edge(request.name, of: node, grant: grant, fields: nil, subfields: request.subfields, modifiers: request.modifiers,
                            call: call, asField: true) {
                case .success(let json): members.append("\(JSONText.quoted(request.name)):\(json)")
                case .failure(let answer): return .failure(answer)
                }
                continue
            }
            switch value(request, of: node, grant: grant) {
            case .success(let json?): members.append("\(JSONText.quoted(request.name)):\(json)")
            case .success(nil): break // Graph leaves out a field it has no value for.
            case .failure(let answer): return .failure(answer)
            }
        }
        return .success("{" + members.joined(separator: ",") + "}")
    }

    /// One field's JSON value, nil when Graph would leave it out.
    private func value(_ request: FieldRequest, of node: Node, grant: TokenBook.Grant) -> Result<String?, GraphErrorAnswer> {
        switch node {
        case .page(let page):
            return pageValue(request, page: page, grant: grant)
        case .form(let form, let pageID):
            return .success(formValue(request.name, form: form, pageID: pageID))
        case .lead(let lead, let formID):
            return .success(leadMembers(lead, formID: formID)[request.name])
        case .user(let token):
            switch request.name {
            case "id": return .success(JSONText.quoted(token.userID))
            case "name": return .success(JSONText.quoted(token.userName ?? "User \(token.userID)"))
            default: return .success(nil)
            }
        }
    }

    private func pageValue(_ request: FieldRequest, page: GraphScenario.Page, grant: TokenBook.Grant) -> Result<String?, GraphErrorAnswer> {
        switch request.name {
        case "id": return .success(JSONText.quoted(page.id))
        case "name": return .success(JSONText.quoted(page.name))
        case "link": return .success(JSONText.quoted("https://www.facebook.com/\(page.id)"))
        case "is_published", "leadgen_tos_accepted": return .success("true")
        case "category": return .success(JSONText.quoted("Software"))
        case "tasks":
            return .success("[" + tokens.origin(of: grant).tasks.map(JSONText.quoted).joined(separator: ",") + "]")
        case "access_token":
            let pageToken = grant.kind == .page ? grant : tokens.pageToken(for: grant, pageID: page.id, now: clock)
            return .success(JSONText.quoted(pageToken.token))
        case "has_lead_access":
            // "leads_retrieval permission is required to call this API" (Meta's has-lead-access reference).
            if !tokens.scopes(grant, now: clock).granted.contains("leads_retrieval") {
                return .failure(GraphErrors.catalogue["permission_200"]!)
            }
            return .success(leadAccess(page: page, grant: grant, userID: request.modifiers["user_id"], fields: request.subfields))
        default:
            return .success(nil)
        }
    }

    /// `has_lead_access` for a user on the Page (default: the token's own user).
    private func leadAccess(page: GraphScenario.Page, grant: TokenBook.Grant, userID: String?, fields: [FieldRequest]?) -> String {
        let origin = tokens.origin(of: grant)
        let user = userID ?? origin.userID
        // Another user's access: their newest token that reaches the Page says it.
        let subject = user == origin.userID ? grant
            : tokens.scenarioTokens.indices.reversed().lazy.filter { self.tokens.scenarioTokens[$0].userID == user }
                .compactMap { self.tokens.grant(self.tokens.scenarioTokens[$0].token) }.first
        let onPage = subject.map { tokens.pages($0).contains(page.id) } ?? false
        let lost = subject.map { tokens.lostLeadAccess($0, now: clock) } ?? true
        let revoked = subject.map { tokens.scopes($0, now: clock).declined.contains("leads_retrieval") } ?? true
        let admin = onPage && !lost
        let canAccess = admin && !revoked
        var members: [String: String] = [
            "can_access_lead": "\(canAccess)", "user_has_leads_permission": "\(admin)", "app_has_leads_permission": "\(!revoked)",
            "is_page_admin": "\(admin)", "enabled_lead_access_manager": "false", "page_id": JSONText.quoted(page.id),
            "user_id": JSONText.quoted(user),
        ]
        if !canAccess {
            members["failure_reason"] = JSONText.quoted("The user does not have permission to access leads on this Page.")
            members["failure_resolution"] = JSONText.quoted("Ask a Page admin to grant the user a task that allows leads access, or add them in the Leads Access Manager.")
        }
        let names = fields?.map(\.name) ?? HasLeadAccessFields.all
        return "{" + names.compactMap { name in members[name].map { "\(JSONText.quoted(name)):\($0)" } }.joined(separator: ",") + "}"
    }

    private func formValue(_ name: String, form: GraphScenario.Form, pageID: String) -> String? {
        let page = scenario.pages.first { $0.id == pageID }
        switch name {
        case "id": return JSONText.quoted(form.id)
        case "name": return JSONText.quoted(form.name)
        case "status": return JSONText.quoted(form.status)
        case "locale": return JSONText.quoted(form.locale ?? "en_US")
        case "created_time": return JSONText.quoted(form.createdTime ?? "2026-01-01T00:00:00+0000")
        case "leads_count":
            let unindexed = scenario.countsLeadsBeforeIndexing
                ? (unindexedByForm[form.id] ?? []).filter { ($0.lead.createdAt ?? .distantFuture) <= clock }.count : 0
            return String(visibleLeads(form.id).count + form.expiredLeadsCount + unindexed)
        case "organic_leads_count":
            let unindexed = scenario.countsLeadsBeforeIndexing
                ? (unindexedByForm[form.id] ?? []).filter { ($0.lead.createdAt ?? .distantFuture) <= clock && $0.lead.isOrganic == true }.count : 0
            return String(visibleLeads(form.id).filter { $0.isOrganic == true }.count + unindexed)
        case "expired_leads_count": return String(form.expiredLeadsCount)
        case "page_id": return JSONText.quoted(pageID)
        case "page": return #"{"name":\#(JSONText.quoted(page?.name ?? "")),"id":\#(JSONText.quoted(pageID))}"#
        case "allow_organic_lead": return "true"
        case "block_display_for_non_targeted_viewer", "is_optimized_for_quality": return "false"
        case "privacy_policy_url": return JSONText.quoted("https://www.example.com/privacy")
        case "follow_up_action_url": return JSONText.quoted("https://www.example.com/")
        case "legal_content":
            return #"{"privacy_policy":{"url":"https://www.example.com/privacy","link_text":"Privacy policy"},"id":"\#(form.id)9"}"#
        case "thank_you_page":
            return #"{"title":"Thanks, you're all set.","body":"We will be in touch.","button_type":"VIEW_WEBSITE","website_url":"https://www.example.com/","id":"\#(form.id)8"}"#
        case "questions":
            return "[" + questionKeys(form.id).enumerated().map { index, key in
                #"{"key":\#(JSONText.quoted(key)),"label":\#(JSONText.quoted(Self.questionLabel(key))),"type":"\#(Self.questionType(key))","id":"\#(form.id)\#(index + 1)"}"#
            }.joined(separator: ",") + "]"
        default:
            // context_card, creator, follow_up_action_text, question_page_custom_headline,
            // tracking_parameters: the scenario has none, and Graph omits empty fields.
            return nil
        }
    }

    /// The form's question keys, as its leads answer them (first seen first).
    private func questionKeys(_ formID: String) -> [String] {
        var keys: [String] = []
        for lead in (leadsByForm[formID] ?? []).prefix(20) {
            for field in lead.fieldData where !keys.contains(field.name) { keys.append(field.name) }
        }
        return keys
    }

    static func questionType(_ key: String) -> String {
        let standard = ["email": "EMAIL", "full_name": "FULL_NAME", "first_name": "FIRST_NAME", "last_name": "LAST_NAME",
                        "phone_number": "PHONE", "company_name": "COMPANY_NAME", "job_title": "JOB_TITLE", "city": "CITY",
                        "state": "STATE", "country": "COUNTRY", "zip_code": "ZIP", "post_code": "POST_CODE",
                        "work_email": "WORK_EMAIL", "work_phone_number": "WORK_PHONE_NUMBER", "street_address": "STREET_ADDRESS",
                        "province": "PROVINCE"]
        return standard[key] ?? "CUSTOM"
    }

    static func questionLabel(_ key: String) -> String {
        questionType(key) == "CUSTOM" ? key : key.replacingOccurrences(of: "_", with: " ").capitalized
    }

    /// A lead's JSON members by field name, built once per lead. Absent fields are left
    /// out, as Graph does; `form_id` and `is_organic` are always there.
    private func leadMembers(_ lead: GraphLead, formID: String) -> [String: String] {
        if let cached = leadMembers[lead.id] { return cached }
        var members: [String: String] = [
            "id": JSONText.quoted(lead.id), "created_time": JSONText.quoted(lead.createdTime),
            "field_data": "[" + lead.fieldData.map {
                #"{"name":\#(JSONText.quoted($0.name)),"values":[\#($0.values.map(JSONText.quoted).joined(separator: ","))]}"#
            }.joined(separator: ",") + "]",
            "form_id": JSONText.quoted(lead.formID ?? formID), "is_organic": "\(lead.isOrganic ?? false)",
        ]
        let optional: [(String, String?)] = [("ad_id", lead.adID), ("ad_name", lead.adName), ("adset_id", lead.adsetID),
                                             ("adset_name", lead.adsetName), ("campaign_id", lead.campaignID),
                                             ("campaign_name", lead.campaignName), ("platform", lead.platform),
                                             ("partner_name", lead.partnerName)]
        for (key, value) in optional { if let value { members[key] = JSONText.quoted(value) } }
        if let consents = lead.customDisclaimerResponses {
            members["custom_disclaimer_responses"] = "[" + consents.map {
                #"{"checkbox_key":\#(JSONText.quoted($0.checkboxKey)),"is_checked":\#(JSONText.quoted($0.isChecked))}"#
            }.joined(separator: ",") + "]"
        }
        leadMembers[lead.id] = members
        return members
    }

    // MARK: - Edges and paging

    /// An edge of a node: read as a path (`/{id}/leads`), or expanded inside `fields`
    /// (`leads.limit(100){id}`), where it comes back as `{"data":[…],"paging":{…}}` whose
    /// `next` URL pages that edge on its own.
    private func edge(_ name: String, of node: Node, grant: TokenBook.Grant, fields: String?, subfields: [FieldRequest]? = nil,
                      modifiers: [String: String], call: Call, asField: Bool) -> Result<String, GraphErrorAnswer> {
        guard node.type.edges.contains(name) else { return .failure(GraphErrors.unknownPath("/\(name)")) }
        let requests: [FieldRequest]?
        if let fields {
            guard let parsed = FieldRequest.parseList(fields) else { return .failure(GraphErrors.invalidParameter("Invalid fields: \(fields)")) }
            requests = parsed
        } else {
            requests = subfields
        }
        let limit: Int
        if let text = modifiers["limit"] {
            guard let value = Int(text), value > 0 else { return .failure(GraphErrors.invalidParameter("Param limit must be a positive integer")) }
            limit = value
        } else {
            limit = 25
        }
        let paging = Paging(node: node.id, edge: name, fields: requests, modifiers: modifiers, limit: limit, call: call,
                            token: grant.token)
        switch (node, name) {
        case (.page(let page), "leadgen_forms"):
            // "This operation requires a Page access token" (Page leadgen_forms reference).
            guard grant.kind == .page else {
                return .failure(.init(status: 400, code: 190, type: "OAuthException", message: "(#190) This method must be called with a Page Access Token"))
            }
            // Forms come with their lead counters: the lead permissions apply (#200, 100/33).
            if let refusal = leadsRefusal(grant) { return .failure(refusal) }
            let items = requests ?? NodeType.leadgenForm.defaultFields.map { FieldRequest(name: $0) }
            return list(count: page.forms.count, paging: paging) { range in
                try page.forms[range].map { try self.render(.form($0, pageID: page.id), requests: items, grant: grant, call: call).get() }
            }
        case (.form(let form, let pageID), "leads"):
            if let refusal = leadsRefusal(grant) { return .failure(refusal) }
            if let maxLimit = scenario.maxLimit, limit > maxLimit { return .failure(GraphErrors.catalogue["reduce_data_500"]!) }
            guard let window = parseFiltering(modifiers["filtering"]) else {
                return .failure(GraphErrors.invalidParameter("Invalid filtering: \(modifiers["filtering"] ?? "")"))
            }
            let range = windowRange(form.id, window)
            let leads = leadsByForm[form.id] ?? []
            let items = requests ?? NodeType.lead.defaultFields.map { FieldRequest(name: $0) }
            if let unknown = items.first(where: { !NodeType.lead.fields.contains($0.name) }) {
                return .failure(GraphErrors.nonexistingField(unknown.name, on: .lead))
            }
            _ = pageID
            return list(count: range.count, paging: paging) { slice in
                leads[(range.lowerBound + slice.lowerBound)..<(range.lowerBound + slice.upperBound)].map { lead in
                    if let raw = self.rawLeads[lead.id] { return raw }
                    let members = self.leadMembers(lead, formID: form.id)
                    return "{" + items.compactMap { item in members[item.name].map { "\(JSONText.quoted(item.name)):\($0)" } }
                        .joined(separator: ",") + "}"
                }
            }
        case (.user(let user), "accounts"):
            guard grant.kind == .user else { return .failure(GraphErrors.unknownPath("/accounts")) }
            let pages = scenario.pages.filter { user.pages.contains($0.id) }
            let items = requests ?? ["access_token", "category", "name", "id", "tasks"].map { FieldRequest(name: $0) }
            return list(count: pages.count, paging: paging) { range in
                try pages[range].map { try self.render(.page($0), requests: items, grant: grant, call: call, context: "accounts").get() }
            }
        case (.user, "permissions"):
            guard grant.kind == .user else { return .failure(GraphErrors.nonexistingField("permissions", on: .page)) }
            let scopes = tokens.scopes(grant, now: clock)
            let all = tokens.origin(of: grant).scopes
            let data = all.map { #"{"permission":"\#($0)","status":"\#(scopes.declined.contains($0) ? "declined" : "granted")"}"# }
            return .success(#"{"data":[\#(data.joined(separator: ","))]}"#)
        default:
            return .failure(GraphErrors.unknownPath("/\(name)"))
        }
    }

    /// What a list page needs to write its cursors and its `next`/`previous` URLs.
    struct Paging {
        let node: String
        let edge: String
        let fields: [FieldRequest]?
        let modifiers: [String: String]
        let limit: Int
        let call: Call
        let token: String
    }

    /// One page of a list from the `after` (or back from the `before`) cursor, with
    /// `cursors`, and `next`/`previous` URLs carrying the access token as Facebook's do.
    /// An empty list is `{"data":[]}`.
    private func list(count: Int, paging: Paging, render: (Range<Int>) throws -> [String]) -> Result<String, GraphErrorAnswer> {
        var start = 0, end = 0
        if let before = paging.modifiers["before"] {
            guard let offset = Self.offset(before), offset <= count else { return .failure(Self.invalidCursor("before")) }
            end = offset
            start = max(0, end - paging.limit)
        } else {
            if let after = paging.modifiers["after"] {
                guard let offset = Self.offset(after), offset <= count else { return .failure(GraphErrors.catalogue["invalid_cursor_100"]!) }
                start = offset
            }
            var size = paging.limit
            let pageNumber = start / paging.limit + 1
            if let every = scenario.shortPageEvery, every > 0, pageNumber % every == 0 { size = max(1, paging.limit / 2) }
            end = min(count, start + size)
        }
        let slice: [String]
        do { slice = try render(start..<end) } catch let answer as GraphErrorAnswer { return .failure(answer) } catch { return .failure(GraphErrors.catalogue["unknown_1"]!) }
        guard !slice.isEmpty else { return .success(#"{"data":[]}"#) }
        var members = [#""cursors":{"before":"\#(Self.cursor(start))","after":"\#(Self.cursor(end))"}"#]
        if end < count { members.append(#""next":\#(JSONText.quoted(pageURL(paging, cursor: ("after", Self.cursor(end)))))"#) }
        if start > 0 { members.append(#""previous":\#(JSONText.quoted(pageURL(paging, cursor: ("before", Self.cursor(start)))))"#) }
        return .success(#"{"data":[\#(slice.joined(separator: ","))],"paging":{\#(members.joined(separator: ","))}}"#)
    }

    /// The URL of the next or previous page, as Graph writes it: the edge's own path, the
    /// token and every parameter that shaped the list.
    private func pageURL(_ paging: Paging, cursor: (String, String)) -> String {
        let host = scenario.nextURLHost ?? baseURL
        var query: [(name: String, value: String)] = [("access_token", paging.token)]
        if let fields = paging.fields { query.append(("fields", fields.map(\.text).joined(separator: ","))) }
        query.append(("limit", String(paging.limit)))
        if let filtering = paging.modifiers["filtering"] { query.append(("filtering", filtering)) }
        if let proof = paging.call.value("appsecret_proof") { query.append(("appsecret_proof", proof)) }
        query.append(cursor)
        let version = paging.call.version ?? scenario.apiVersion
        return "\(host)/\(version)/\(paging.node)/\(paging.edge)?\(URLQuery.encode(query))"
    }

    static func invalidCursor(_ which: String) -> GraphErrorAnswer {
        GraphErrors.invalidParameter("The \(which) cursor is invalid")
    }

    static func cursor(_ offset: Int) -> String { Data("offset:\(offset)".utf8).base64EncodedString() }

    static func offset(_ cursor: String) -> Int? {
        guard let decoded = Data(base64Encoded: cursor).flatMap({ String(data: $0, encoding: .utf8) }), decoded.hasPrefix("offset:") else { return nil }
        return Int(decoded.dropFirst(7)).flatMap { $0 >= 0 ? $0 : nil }
    }

    /// Graph's lead `filtering` on `time_created`: `GREATER_THAN`, `GREATER_THAN_OR_EQUAL`
    /// and `LESS_THAN` (Meta's retrieving-leads guide), in whole seconds.
    private func parseFiltering(_ text: String?) -> (greaterThan: Int64?, lessThan: Int64?)? {
        guard let text else { return (nil, nil) }
        guard let clauses = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else { return nil }
        var result: (greaterThan: Int64?, lessThan: Int64?) = (nil, nil)
        for clause in clauses {
            guard clause["field"] as? String == "time_created", let value = (clause["value"] as? NSNumber)?.int64Value else { return nil }
            switch clause["operator"] as? String {
            case "GREATER_THAN": result.greaterThan = max(result.greaterThan ?? .min, value)
            case "GREATER_THAN_OR_EQUAL": result.greaterThan = max(result.greaterThan ?? .min, value - 1)
            case "LESS_THAN": result.lessThan = min(result.lessThan ?? .max, value)
            default: return nil
            }
        }
        return result
    }

    private func visibleLeads(_ formID: String) -> [GraphLead] {
        let range = windowRange(formID, (nil, nil))
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
    private func windowRange(_ formID: String, _ window: (greaterThan: Int64?, lessThan: Int64?)) -> Range<Int> {
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
            return date <= clock && (window.lessThan.map { seconds(date) < $0 } ?? true)
        }
        let end = boundary { date in
            guard let date else { return true }
            return window.greaterThan.map { seconds(date) <= $0 } ?? false
        }
        return first..<max(first, end)
    }

    // MARK: - Batch

    /// `POST /` with `batch=[{"method":"GET","relative_url":"…"},…]`: at most 50 calls, each
    /// answered as `{"code","headers":[{"name","value"}],"body":"<JSON as a string>"}` in
    /// order, each counted and failing on its own (Meta's batch-requests guide). A call
    /// without its own `access_token` uses the batch's (and its `appsecret_proof`).
    private func batch(_ call: Call, begin: ContinuousClock.Instant) -> LoopbackHTTPServer.Response {
        guard let text = call.value("batch"), let elements = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
            return respond(GraphErrors.invalidParameter("The batch parameter must be a JSON array"), call)
        }
        guard elements.count <= 50 else {
            return respond(GraphErrors.invalidParameter("Too many requests in batch message. Maximum batch size is 50"), call)
        }
        guard let token = call.accessToken else {
            return respond(.init(status: 400, code: 104, type: "OAuthException", message: "An access token is required to request this resource."), call)
        }
        if !tokens.isAppToken(token), tokens.grant(token) == nil { return respond(GraphErrors.catalogue["invalid_token_190"]!, call) }
        if let refusal = proofRefusal(call, token: token) { return respond(refusal, call) }
        let withHeaders = call.value("include_headers") != "false"
        var answers: [String] = []
        var truncate = false
        var delay: Duration = .zero
        for element in elements {
            guard let object = element as? [String: Any], let method = object["method"] as? String,
                  let relative = object["relative_url"] as? String else {
                answers.append(#"{"code":400,"body":\#(JSONText.quoted(String(decoding: GraphErrors.invalidParameter("Each batch request needs a method and a relative_url").body(), as: UTF8.self)))}"#)
                continue
            }
            let target = relative.hasPrefix("/") ? relative : "/" + relative
            let pathEnd = target.firstIndex(of: "?") ?? target.endIndex
            var params = pathEnd < target.endIndex ? URLQuery.decode(target[target.index(after: pathEnd)...]) ?? [] : []
            if let body = object["body"] as? String { params += URLQuery.decode(Substring(body)) ?? [] }
            if !params.contains(where: { $0.name == "access_token" }) {
                params.append(("access_token", token))
                if let proof = call.value("appsecret_proof") { params.append(("appsecret_proof", proof)) }
            }
            let inner = Self.call(method: method.uppercased(), target: String(target[..<pathEnd]), params: params, bearer: nil, batched: true)
            let response = serve(inner)
            record(inner, status: response.status, begin: begin)
            if response.truncateBodyAfter != nil { truncate = true }
            delay += response.delay ?? .zero
            var members = [#""code":\#(response.status)"#]
            if withHeaders {
                members.append(#""headers":[\#(response.headers.map { #"{"name":\#(JSONText.quoted($0.name)),"value":\#(JSONText.quoted($0.value))}"# }.joined(separator: ","))]"#)
            }
            members.append(#""body":\#(JSONText.quoted(String(decoding: response.body, as: UTF8.self)))"#)
            answers.append("{" + members.joined(separator: ",") + "}")
        }
        var response = LoopbackHTTPServer.Response.json("[" + answers.joined(separator: ",") + "]")
        if truncate { response.truncateBodyAfter = response.body.count / 2 }
        if delay > .zero { response.delay = delay }
        return response
    }

    // MARK: - Tokens

    /// `GET /debug_token?input_token=…`, asked with the app token (or a valid token of the
    /// app). Meta's debugging guide: `app_id, type, application, data_access_expires_at,
    /// expires_at, is_valid, issued_at, scopes, granular_scopes, user_id`, and a Page
    /// token's `profile_id`; 0 means "never"; an invalid token has `is_valid: false` and an `error`.
    private func debugToken(_ call: Call) -> LoopbackHTTPServer.Response {
        guard let asker = call.accessToken, tokens.isAppToken(asker) || tokens.grant(asker).map({ tokens.failure($0, now: clock) == nil }) == true else {
            return respond(GraphErrors.catalogue["invalid_token_190"]!, call)
        }
        if let proof = call.value("appsecret_proof"),
           !tokens.proofMatches(proof, token: asker, time: call.value("appsecret_time"), now: clock) {
            return respond(GraphErrors.invalidAppSecretProof, call)
        }
        let input = call.value("input_token") ?? ""
        guard let grant = tokens.grant(input) else {
            return ok(#"{"data":{"error":{"code":190,"message":"Invalid OAuth access token - Cannot parse access token"},"is_valid":false,"scopes":[]}}"#,
                      call: call, grant: nil)
        }
        let origin = tokens.origin(of: grant)
        let failure = tokens.failure(grant, now: clock)
        let (granted, _) = tokens.scopes(grant, now: clock)
        let epoch: (Date?) -> Int64 = { $0.map { Int64($0.timeIntervalSince1970) } ?? 0 }
        // Page-scoped permissions name the Pages they were granted on.
        let pageScoped: Set<String> = ["leads_retrieval", "pages_show_list", "pages_read_engagement", "pages_manage_ads",
                                       "pages_manage_metadata", "pages_read_user_content", "pages_manage_posts"]
        let targets = origin.pages.map(JSONText.quoted).joined(separator: ",")
        let granular = granted.map { scope in
            pageScoped.contains(scope) ? #"{"scope":"\#(scope)","target_ids":[\#(targets)]}"# : #"{"scope":"\#(scope)"}"#
        }
        var members = [#""app_id":"\#(scenario.appID)""#, #""type":"\#(grant.kind.rawValue)""#, #""application":"LeadFlow test app""#,
                       #""data_access_expires_at":\#(epoch(tokens.dataAccessExpiresAt(grant, now: clock)))"#,
                       #""expires_at":\#(epoch(tokens.expiry(grant, now: clock)))"#, #""is_valid":\#(failure == nil)"#]
        if grant.longLived || grant.kind == .page { members.append(#""issued_at":\#(epoch(grant.issuedAt))"#) }
        if let page = grant.pageID { members.append(#""profile_id":"\#(page)""#) }
        members.append(#""scopes":[\#(granted.map(JSONText.quoted).joined(separator: ","))]"#)
        members.append(#""granular_scopes":[\#(granular.joined(separator: ","))]"#)
        members.append(#""user_id":"\#(origin.userID)""#)
        if let failure {
            members.append(#""error":{"code":\#(failure.code),"message":\#(JSONText.quoted(failure.message))\#(failure.subcode.map { #","subcode":\#($0)"# } ?? "")}"#)
        }
        return ok("{\"data\":{\(members.joined(separator: ","))}}", call: call, grant: nil)
    }

    /// `GET /oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token`:
    /// a long-lived user token, `expires_in` 5,184,000 s (60 days), from a valid user token.
    private func exchange(_ call: Call) -> LoopbackHTTPServer.Response {
        guard call.value("grant_type") == "fb_exchange_token" else {
            return respond(GraphErrors.invalidParameter("Missing or unsupported grant_type"), call)
        }
        guard call.value("client_id") == scenario.appID else {
            return respond(.init(status: 400, code: 101, type: "OAuthException", message: "Error validating application. Invalid application ID."), call)
        }
        guard call.value("client_secret") == scenario.appSecret else {
            return respond(.init(status: 400, code: 1, type: "OAuthException", message: "Error validating client secret."), call)
        }
        guard let short = call.value("fb_exchange_token").flatMap({ tokens.grant($0) }), short.kind == .user else {
            return respond(GraphErrors.catalogue["invalid_token_190"]!, call)
        }
        if let failure = tokens.failure(short, now: clock) { return respond(failure, call) }
        let long = tokens.exchange(short, now: clock)
        return .json(#"{"access_token":"\#(long.token)","token_type":"bearer","expires_in":\#(Int(TokenBook.longLived))}"#,
                     headers: [("X-App-Usage", appUsage())])
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

    /// A 200 with the usage header of the token's kind: a Page token's calls count against
    /// the Page's business-use-case quota (`X-Business-Use-Case-Usage`, keyed by the Page),
    /// others against the app's (`X-App-Usage`) — Meta's rate-limiting guide.
    private func ok(_ json: String, call: Call, grant: TokenBook.Grant?) -> LoopbackHTTPServer.Response {
        if let grant, grant.kind == .page, let page = grant.pageID {
            let type = call.parts.last == "leads" || call.parts.last == "leadgen_forms" ? "leadgen" : "pages"
            let usage = percent { $0.pageID == page }
            return .json(json, headers: [("X-Business-Use-Case-Usage",
                                          #"{"\#(page)":[{"type":"\#(type)","call_count":\#(usage),"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}]}"#)])
        }
        return .json(json, headers: [("X-App-Usage", appUsage())])
    }

    private func appUsage() -> String {
        #"{"call_count":\#(percent { _ in true }),"total_cputime":1,"total_time":1}"#
    }

    /// The share of `callsPerMinuteQuota` used over the last `quotaWindowSeconds` by the
    /// matching calls (Graph's quotas are rolling windows), or a steady 1 % without a quota.
    private func percent(_ counts: (RequestRecord) -> Bool) -> Int {
        guard let quota = scenario.callsPerMinuteQuota, quota > 0 else { return 1 }
        let since = (ContinuousClock.now - started).timeInterval - scenario.quotaWindowSeconds
        let recent = log.reversed().prefix { $0.startedAt >= since }.filter(counts).count
        return min(100, recent * 100 / quota)
    }
}

extension GraphErrorAnswer: Error {}

extension FieldRequest {
    /// The request written back in Graph's syntax (for the `next` URL of an expanded edge).
    var text: String {
        var out = name
        for (key, value) in modifiers.sorted(by: { $0.key < $1.key }) { out += ".\(key)(\(value))" }
        if let subfields { out += "{" + subfields.map(\.text).joined(separator: ",") + "}" }
        return out
    }
}

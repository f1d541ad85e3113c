import Foundation
import LeadFlowCore

/// What the Graph fake plays: Pages, forms, leads, tokens, events on a timeline, and
/// faults. Loaded from `fixtures/scenarios/*.json` or built in a test.
public struct GraphScenario: Codable, Sendable {
    public var apiVersion: String = "v25.0"
    public var appID: String = "1234567890"
    public var appSecret: String = "fake-app-secret"
    public var pages: [Page] = []
    public var tokens: [Token] = []
    /// A `limit` above this gets Graph's 500 "Please reduce the amount of data".
    public var maxLimit: Int?
    /// Every Nth page of a list comes back half full (privacy filtering), mid-stream.
    public var shortPageEvery: Int?
    /// Latency added to every request.
    public var latencyMilliseconds: Int?
    /// The host written into `next` URLs (default: the fake's own). Clients must not follow it.
    public var nextURLHost: String?
    /// Calls a minute that X-App-Usage counts as 100 % (nil: the fake reports 1 %).
    public var callsPerMinuteQuota: Int?
    /// The rolling window that quota counts calls over, in wall-clock seconds (default 60).
    /// A test that counts on every call of a read landing in one window sets it long: on a
    /// loaded machine a read of twenty pages can take more than a minute of wall time.
    public var quotaWindowSeconds: Double = 60
    public var faults: [Fault] = []
    /// Leads Facebook stops returning at an instant (counted in `expired_leads_count`).
    public var leadExpiries: [LeadExpiry] = []
    /// The app's "Require App Secret" setting: calls with a user or Page token and no
    /// `appsecret_proof` are refused. A wrong proof is refused either way.
    public var requireAppSecretProof = true
    /// Whether a form's `leads_count` counts leads Graph has not indexed yet (see
    /// `LeadGenerator.lateEvery`). Issue 18 measured Facebook's counters knowing of leads the
    /// leads edge returned hours later; Meta does not document either way, so both are playable.
    public var countsLeadsBeforeIndexing = true

    /// A scenario Graph would not play (a Page token naming two Pages, say).
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    public init(pages: [Page] = [], tokens: [Token] = [], faults: [Fault] = []) {
        self.pages = pages
        self.tokens = tokens
        self.faults = faults
    }

    public struct Page: Codable, Sendable {
        public var id: String
        public var name: String
        public var forms: [Form]

        public init(id: String, name: String, forms: [Form]) {
            self.id = id
            self.name = name
            self.forms = forms
        }
    }

    public struct Form: Codable, Sendable {
        public var id: String
        public var name: String
        public var status: String = "ACTIVE"
        public var locale: String? = "en_US"
        public var createdTime: String? = "2026-01-01T00:00:00+0000"
        /// Leads Facebook no longer returns (the form's `expired_leads_count`).
        public var expiredLeadsCount: Int = 0
        public var leads: [GraphLead]?
        public var generate: LeadGenerator?

        public init(id: String, name: String, status: String = "ACTIVE", leads: [GraphLead]? = nil,
                    generate: LeadGenerator? = nil) {
            self.id = id
            self.name = name
            self.status = status
            self.leads = leads
            self.generate = generate
        }
    }

    /// Leads made up deterministically, so a scenario of 100,000 leads is a few lines.
    public struct LeadGenerator: Codable, Sendable {
        public var count: Int
        /// The first lead's `created_time`.
        public var start: String
        public var spacingSeconds: Int = 60
        /// Every Nth lead is organic (no ad fields); 0: none.
        public var organicEvery: Int = 5
        /// Add custom questions whose key is the question's text, in French and Japanese.
        public var customQuestions: Bool = false
        /// The first lead id; later ids count up from it.
        public var firstID: Int64?
        /// Every Nth lead (0: none) is indexed late: the leads edge returns it only
        /// `lateBySeconds` after its `created_time` (issue 18: Graph returning a lead hours
        /// after it was created, which a window from the newest lead seen never re-reads).
        public var lateEvery: Int = 0
        public var lateBySeconds: Int = 0

        public init(count: Int, start: String, spacingSeconds: Int = 60, organicEvery: Int = 5,
                    customQuestions: Bool = false, firstID: Int64? = nil) {
            self.count = count
            self.start = start
            self.spacingSeconds = spacingSeconds
            self.organicEvery = organicEvery
            self.customQuestions = customQuestions
            self.firstID = firstID
        }
    }

    /// A token as the Connector Authenticator would hand it over. A USER token is
    /// short-lived (1 h from `issued_at`) unless `long_lived` or its own `expires_at` says
    /// otherwise; a PAGE token belongs to one Page and never expires unless `expires_at`
    /// says so. Tokens the fake mints from it (the exchange, Page tokens) follow Facebook's
    /// rules (`TokenBook`).
    public struct Token: Codable, Sendable {
        public var token: String
        public var type: String = "PAGE"
        public var userID: String = "42"
        /// The user's name, as `/me?fields=name` answers.
        public var userName: String?
        /// When the user authorised the app with this token (nil: the fake's start).
        public var issuedAt: String?
        /// nil: by type (USER: 1 h, or 60 days when long-lived; PAGE: never).
        public var expiresAt: String?
        public var longLived = false
        /// nil: 90 days after the user's newest authorisation.
        public var dataAccessExpiresAt: String?
        public var scopes: [String] = ["leads_retrieval", "pages_show_list", "pages_read_engagement",
                                       "pages_manage_ads", "ads_management"]
        /// The Pages this token reaches (a PAGE token: its one Page).
        public var pages: [String]
        /// The user's tasks on those Pages (`me/accounts`).
        public var tasks: [String] = ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"]
        /// Instants at which the token changes.
        public var events: [TokenEvent] = []

        public init(token: String, pages: [String], expiresAt: String? = nil, events: [TokenEvent] = []) {
            self.token = token
            self.pages = pages
            self.expiresAt = expiresAt
            self.events = events
        }

        /// A fresh short-lived user token, as the OAuth dialog hands it over.
        public static func user(_ token: String, id: String = "42", name: String? = nil, pages: [String], issuedAt: String,
                                events: [TokenEvent] = []) -> Token {
            var user = Token(token: token, pages: pages, events: events)
            user.type = "USER"
            user.userID = id
            user.userName = name
            user.issuedAt = issuedAt
            return user
        }
    }

    public struct TokenEvent: Codable, Sendable {
        public enum Kind: String, Codable, Sendable {
            /// Expires (190/463).
            case expire
            /// Invalidated by a password change (190/460).
            case invalidate
            /// A permission is declined (`permission` names it): 200.
            case revokePermission = "revoke_permission"
            /// The user loses the Page role or lead access: 100/33.
            case loseLeadAccess = "lose_lead_access"
            /// The user removes the app (190/458).
            case removeApp = "remove_app"
        }
        public var at: String
        public var kind: Kind
        public var permission: String?

        public init(at: String, kind: Kind, permission: String? = nil) {
            self.at = at
            self.kind = kind
            self.permission = permission
        }
    }

    /// At `at`, the form's leads created in `[createdFrom, createdBefore)` expire: Graph no
    /// longer returns them and the form's `expired_leads_count` rises by their number.
    public struct LeadExpiry: Codable, Sendable {
        public var at: String
        public var formID: String
        public var createdFrom: String?
        public var createdBefore: String

        public init(at: String, formID: String, createdFrom: String? = nil, createdBefore: String) {
            self.at = at
            self.formID = formID
            self.createdFrom = createdFrom
            self.createdBefore = createdBefore
        }

        enum CodingKeys: String, CodingKey {
            case at, formID = "form_id", createdFrom = "created_from", createdBefore = "created_before"
        }
    }

    /// A fault: when the Nth request (1-based) whose path contains `path` arrives, and the
    /// `times - 1` matching ones after it, answer with `kind` instead.
    public struct Fault: Codable, Sendable {
        public enum Kind: String, Codable, Sendable {
            case http500 = "http_500"
            /// An error envelope from `fixtures/graph/errors/<fixture>.json`, with `status`.
            case graphError = "graph_error"
            /// A valid answer cut short: the full Content-Length announced, half the body sent.
            case truncate
            /// HTTP 200 with a body that is not JSON.
            case invalidJSON = "invalid_json"
            /// The answer, late by `latencyMilliseconds`.
            case latency
            /// From this request on, the token used is expired (190/463).
            case expireToken = "expire_token"
        }
        public var path: String
        public var onRequest: Int
        public var times: Int = 1
        public var kind: Kind
        public var fixture: String?
        public var status: Int = 400
        public var latencyMilliseconds: Int?
        /// Sent as `estimated_time_to_regain_access` (minutes) in X-Business-Use-Case-Usage.
        public var regainAccessMinutes: Int?

        public init(path: String, onRequest: Int, times: Int = 1, kind: Kind, fixture: String? = nil, status: Int = 400,
                    latencyMilliseconds: Int? = nil, regainAccessMinutes: Int? = nil) {
            self.path = path
            self.onRequest = onRequest
            self.times = times
            self.kind = kind
            self.fixture = fixture
            self.status = status
            self.latencyMilliseconds = latencyMilliseconds
            self.regainAccessMinutes = regainAccessMinutes
        }
    }

    public static func load(_ url: URL) throws -> GraphScenario {
        try JSONDecoder().decode(GraphScenario.self, from: Data(contentsOf: url))
    }
}

extension GraphScenario.LeadGenerator {
    /// The leads, oldest first.
    /// When Graph starts returning each late lead (by id): `lateBySeconds` after its `created_time`.
    public func indexedAt(formID: String) -> [String: Date] {
        guard lateEvery > 0, lateBySeconds > 0 else { return [:] }
        var result: [String: Date] = [:]
        for lead in leads(formID: formID).enumerated() where lead.offset % lateEvery == lateEvery - 1 {
            if let created = lead.element.createdAt { result[lead.element.id] = created.addingTimeInterval(Double(lateBySeconds)) }
        }
        return result
    }

    public func leads(formID: String) -> [GraphLead] {
        let start = UTCTime.parse(self.start) ?? Date(timeIntervalSince1970: 0)
        let first = firstID ?? (Int64(formID) ?? 1) * 1_000_000
        let countries = ["US", "France", "de", "Japan", "GB"]
        return (0..<count).map { index in
            let id = String(first + Int64(index))
            let organic = organicEvery > 0 && index % organicEvery == 0
            var fields: [GraphLead.Field] = [
                .init(name: "email", values: ["  Lead.\(id)@Example.com "]),
                .init(name: "full_name", values: ["Lead \(id) Person"]),
                .init(name: "phone_number", values: ["+1 555 01\(String(format: "%02d", index % 100))"]),
                .init(name: "country", values: [countries[index % countries.count]]),
                .init(name: "company_name", values: ["Company \(index % 37)"]),
            ]
            if customQuestions {
                fields.append(.init(name: "Quel est votre budget annuel ?", values: ["10 000 €"]))
                fields.append(.init(name: "ご興味のある製品は？", values: ["CRM", "分析"]))
            }
            let created = UTCTime.graphTimestamp(start.addingTimeInterval(Double(index * spacingSeconds)))
            return GraphLead(id: id, createdTime: created, fieldData: fields,
                             adID: organic ? nil : "6\(formID)01", adName: organic ? nil : "Ad \(formID)",
                             adsetID: organic ? nil : "6\(formID)02", adsetName: organic ? nil : "Ad set",
                             campaignID: organic ? nil : "6\(formID)03", campaignName: organic ? nil : "Campaign",
                             formID: formID, isOrganic: organic, platform: index % 3 == 0 ? "ig" : "fb",
                             customDisclaimerResponses: [.init(checkboxKey: "marketing_opt_in", isChecked: index % 2 == 0 ? "1" : "0")])
        }
    }
}

extension UTCTime {
    /// Graph's own format: `2026-11-01T12:34:56+0000`.
    static func graphTimestamp(_ date: Date) -> String {
        let f = fields(date)
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(f.year, 4))-\(pad(f.month, 2))-\(pad(f.day, 2))T\(pad(f.hour, 2)):\(pad(f.minute, 2)):\(pad(f.second, 2))+0000"
    }
}

// MARK: - Decoding: snake_case keys, and every key with a default may be left out.

extension KeyedDecodingContainer {
    fileprivate func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }
}

extension GraphScenario {
    enum CodingKeys: String, CodingKey {
        case apiVersion = "api_version", appID = "app_id", appSecret = "app_secret", pages, tokens
        case maxLimit = "max_limit", shortPageEvery = "short_page_every", latencyMilliseconds = "latency_milliseconds"
        case nextURLHost = "next_url_host", callsPerMinuteQuota = "calls_per_minute_quota", quotaWindowSeconds = "quota_window_seconds", faults
        case leadExpiries = "lead_expiries", requireAppSecretProof = "require_appsecret_proof"
        case countsLeadsBeforeIndexing = "counts_leads_before_indexing"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        apiVersion = try c.value(.apiVersion, or: apiVersion)
        appID = try c.value(.appID, or: appID)
        appSecret = try c.value(.appSecret, or: appSecret)
        pages = try c.value(.pages, or: [])
        tokens = try c.value(.tokens, or: [])
        maxLimit = try c.decodeIfPresent(Int.self, forKey: .maxLimit)
        shortPageEvery = try c.decodeIfPresent(Int.self, forKey: .shortPageEvery)
        latencyMilliseconds = try c.decodeIfPresent(Int.self, forKey: .latencyMilliseconds)
        nextURLHost = try c.decodeIfPresent(String.self, forKey: .nextURLHost)
        callsPerMinuteQuota = try c.decodeIfPresent(Int.self, forKey: .callsPerMinuteQuota)
        quotaWindowSeconds = try c.value(.quotaWindowSeconds, or: quotaWindowSeconds)
        faults = try c.value(.faults, or: [])
        leadExpiries = try c.value(.leadExpiries, or: [])
        requireAppSecretProof = try c.value(.requireAppSecretProof, or: true)
        countsLeadsBeforeIndexing = try c.value(.countsLeadsBeforeIndexing, or: true)
    }
}

extension GraphScenario.Form {
    enum CodingKeys: String, CodingKey {
        case id, name, status, locale, leads, generate
        case createdTime = "created_time", expiredLeadsCount = "expired_leads_count"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), name: try c.decode(String.self, forKey: .name))
        status = try c.value(.status, or: status)
        locale = try c.value(.locale, or: locale)
        createdTime = try c.value(.createdTime, or: createdTime)
        expiredLeadsCount = try c.value(.expiredLeadsCount, or: 0)
        leads = try c.decodeIfPresent([GraphLead].self, forKey: .leads)
        generate = try c.decodeIfPresent(GraphScenario.LeadGenerator.self, forKey: .generate)
    }
}

extension GraphScenario.LeadGenerator {
    enum CodingKeys: String, CodingKey {
        case count, start
        case spacingSeconds = "spacing_seconds", organicEvery = "organic_every", customQuestions = "custom_questions", firstID = "first_id"
        case lateEvery = "late_every", lateBySeconds = "late_by_seconds"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(count: try c.decode(Int.self, forKey: .count), start: try c.decode(String.self, forKey: .start))
        spacingSeconds = try c.value(.spacingSeconds, or: spacingSeconds)
        organicEvery = try c.value(.organicEvery, or: organicEvery)
        customQuestions = try c.value(.customQuestions, or: false)
        firstID = try c.decodeIfPresent(Int64.self, forKey: .firstID)
        lateEvery = try c.value(.lateEvery, or: 0)
        lateBySeconds = try c.value(.lateBySeconds, or: 0)
    }
}

extension GraphScenario.Token {
    enum CodingKeys: String, CodingKey {
        case token, type, scopes, pages, events, tasks
        case userID = "user_id", userName = "user_name", issuedAt = "issued_at", expiresAt = "expires_at"
        case longLived = "long_lived", dataAccessExpiresAt = "data_access_expires_at"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(token: try c.decode(String.self, forKey: .token), pages: try c.decode([String].self, forKey: .pages))
        type = try c.value(.type, or: type)
        userID = try c.value(.userID, or: userID)
        userName = try c.decodeIfPresent(String.self, forKey: .userName)
        issuedAt = try c.decodeIfPresent(String.self, forKey: .issuedAt)
        expiresAt = try c.decodeIfPresent(String.self, forKey: .expiresAt)
        longLived = try c.value(.longLived, or: false)
        dataAccessExpiresAt = try c.decodeIfPresent(String.self, forKey: .dataAccessExpiresAt)
        scopes = try c.value(.scopes, or: scopes)
        tasks = try c.value(.tasks, or: tasks)
        events = try c.value(.events, or: [])
    }
}

extension GraphScenario.Fault {
    enum CodingKeys: String, CodingKey {
        case path, times, kind, fixture, status
        case onRequest = "on_request", latencyMilliseconds = "latency_milliseconds", regainAccessMinutes = "regain_access_minutes"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(path: try c.decode(String.self, forKey: .path), onRequest: try c.decode(Int.self, forKey: .onRequest),
                  kind: try c.decode(Kind.self, forKey: .kind))
        times = try c.value(.times, or: 1)
        fixture = try c.decodeIfPresent(String.self, forKey: .fixture)
        status = try c.value(.status, or: status)
        latencyMilliseconds = try c.decodeIfPresent(Int.self, forKey: .latencyMilliseconds)
        regainAccessMinutes = try c.decodeIfPresent(Int.self, forKey: .regainAccessMinutes)
    }
}

import Crypto
import Foundation
import LeadFlowCore

/// Every token the fake knows and what each may do at the fake's clock, by Facebook's
/// rules (`GRAPH_API.md`, "Tokens and the 90 days"; Meta's access-token guide):
///
/// - a user token from the scenario is short-lived (1 h from `issued_at`) unless it says
///   `long_lived` or gives its own `expires_at`;
/// - `fb_exchange_token` mints a long-lived user token that ends 60 days (5,184,000 s) later;
/// - `me/accounts` (or `/{page}?fields=access_token`) mints a Page token, distinct from the
///   user token: with a long-lived user token it never expires (`expires_at` 0), with a
///   short-lived one it ends with it;
/// - data access ends 90 days after the user last authorised the app (the newest
///   `issued_at` of that user's scenario tokens so far), for every token of that user;
/// - events on a scenario token (a password change, a declined permission, a lost Page
///   role) reach every token minted from it, and a password change ends every token issued
///   before it.
struct TokenBook {
    /// A token and where it comes from.
    struct Grant: Sendable {
        enum Kind: String, Sendable { case user = "USER", page = "PAGE" }
        let token: String
        let kind: Kind
        /// The scenario token (the user's authorisation) it descends from.
        let origin: Int
        /// A Page token's Page.
        let pageID: String?
        let issuedAt: Date
        /// nil: never.
        let expiresAt: Date?
        let longLived: Bool
    }

    static let shortLived: TimeInterval = 3600
    static let longLived: TimeInterval = 5_184_000
    static let dataAccess: TimeInterval = 90 * 86_400

    private(set) var scenarioTokens: [GraphScenario.Token]
    let appID: String
    let appSecret: String
    private var grants: [String: Grant] = [:]
    /// Page tokens already minted, by (user token, Page): asked again, Graph gives the same.
    private var pageTokens: [String: String] = [:]
    /// Tokens a fault ended (`expire_token`).
    private var forcedExpired: Set<String> = []
    private var minted = 0

    init(scenario: GraphScenario, start: Date) throws {
        scenarioTokens = scenario.tokens
        appID = scenario.appID
        appSecret = scenario.appSecret
        for (index, token) in scenario.tokens.enumerated() {
            try add(token, index: index, start: start)
        }
    }

    private mutating func add(_ token: GraphScenario.Token, index: Int, start: Date) throws {
        let kind: Grant.Kind = token.type == "PAGE" ? .page : .user
        if kind == .page, token.pages.count != 1 {
            throw GraphScenario.Invalid("token \(token.token.prefix(12))…: a Page token belongs to exactly one Page; list one page, or make it a USER token")
        }
        let issued = token.issuedAt.flatMap(UTCTime.parse) ?? start
        let expires: Date?
        if let given = token.expiresAt {
            guard let date = UTCTime.parse(given) else { throw GraphScenario.Invalid("token expires_at is not an instant: \(given)") }
            expires = date
        } else if kind == .user {
            expires = issued.addingTimeInterval(token.longLived ? Self.longLived : Self.shortLived)
        } else {
            expires = nil
        }
        scenarioTokens[index].issuedAt = UTCTime.iso8601(issued)
        grants[token.token] = Grant(token: token.token, kind: kind, origin: index, pageID: kind == .page ? token.pages.first : nil,
                                    issuedAt: issued, expiresAt: expires, longLived: token.longLived)
    }

    /// A token handed to the fake while it runs (a reauthentication's fresh token).
    mutating func issue(_ token: GraphScenario.Token, start: Date) throws {
        scenarioTokens.append(token)
        try add(token, index: scenarioTokens.count - 1, start: start)
    }

    mutating func addEvent(_ event: GraphScenario.TokenEvent, toScenarioToken token: String) {
        guard let index = scenarioTokens.firstIndex(where: { $0.token == token }) else { return }
        scenarioTokens[index].events.append(event)
    }

    func grant(_ token: String) -> Grant? { grants[token] }

    func origin(of grant: Grant) -> GraphScenario.Token { scenarioTokens[grant.origin] }

    var isAppToken: (String) -> Bool { { [appID, appSecret] in $0 == "\(appID)|\(appSecret)" } }

    // MARK: - Minting

    /// `fb_exchange_token`: a long-lived user token, 60 days from `now`.
    mutating func exchange(_ short: Grant, now: Date) -> Grant {
        let long = Grant(token: mint("EAAG"), kind: .user, origin: short.origin, pageID: nil, issuedAt: now,
                         expiresAt: now.addingTimeInterval(Self.longLived), longLived: true)
        grants[long.token] = long
        return long
    }

    /// The Page token a user token gets for a Page it manages.
    mutating func pageToken(for user: Grant, pageID: String, now: Date) -> Grant {
        let key = "\(user.token)\u{0}\(pageID)"
        if let existing = pageTokens[key], let grant = grants[existing] { return grant }
        let page = Grant(token: mint("EAAP"), kind: .page, origin: user.origin, pageID: pageID, issuedAt: now,
                         expiresAt: user.longLived ? nil : user.expiresAt, longLived: user.longLived)
        grants[page.token] = page
        pageTokens[key] = page.token
        return page
    }

    private mutating func mint(_ prefix: String) -> String {
        minted += 1
        let digest = SHA256.hash(data: Data("\(prefix)\(minted)\(appSecret)".utf8))
        return prefix + Hex.lowercase(digest).prefix(40) + "ZD"
    }

    mutating func forceExpiry(_ token: String) { forcedExpired.insert(token) }

    // MARK: - What a token may do now

    func happened(_ grant: Grant, now: Date) -> [GraphScenario.TokenEvent] {
        origin(of: grant).events.filter { (UTCTime.parse($0.at) ?? .distantFuture) <= now }
    }

    /// When the user's data access ends: the scenario's own value, else 90 days after the
    /// user's newest authorisation (a scenario token of the same user issued by `now`).
    func dataAccessExpiresAt(_ grant: Grant, now: Date) -> Date {
        let token = origin(of: grant)
        if let given = token.dataAccessExpiresAt.flatMap(UTCTime.parse) { return given }
        let own = UTCTime.parse(token.issuedAt ?? "") ?? grant.issuedAt
        let authorisations = scenarioTokens.filter { $0.userID == token.userID }
            .compactMap { $0.issuedAt.flatMap(UTCTime.parse) }.filter { $0 <= now } + [own]
        return (authorisations.max() ?? grant.issuedAt).addingTimeInterval(Self.dataAccess)
    }

    /// Why the token cannot be used now, as Graph answers it; nil when it can.
    func failure(_ grant: Grant, now: Date) -> GraphErrorAnswer? {
        let events = happened(grant, now: now)
        if events.contains(where: { $0.kind == .invalidate && (UTCTime.parse($0.at) ?? .distantPast) >= grant.issuedAt }) {
            return GraphErrors.catalogue["password_changed_460"]
        }
        if events.contains(where: { $0.kind == .removeApp }) {
            var answer = GraphErrors.catalogue["app_removed_458"]!
            answer.message = "Error validating access token: The user has not authorized application \(appID)."
            return answer
        }
        if let expiry = expiry(grant, now: now), expiry <= now {
            return GraphErrors.tokenExpired(at: expiry, now: now)
        }
        if dataAccessExpiresAt(grant, now: now) <= now { return GraphErrors.dataAccessExpired }
        return nil
    }

    /// The instant the token ended or will end (its lifetime, an `expire` event, a fault).
    func expiry(_ grant: Grant, now: Date) -> Date? {
        if forcedExpired.contains(grant.token) { return min(grant.expiresAt ?? now, now) }
        let event = happened(grant, now: now).filter { $0.kind == .expire }.compactMap { UTCTime.parse($0.at) }.min()
        switch (grant.expiresAt, event) {
        case let (lifetime?, event?): return min(lifetime, event)
        case let (lifetime, event): return lifetime ?? event
        }
    }

    /// The permissions the user granted and has not declined since.
    func scopes(_ grant: Grant, now: Date) -> (granted: [String], declined: Set<String>) {
        let declined = Set(happened(grant, now: now).filter { $0.kind == .revokePermission }.compactMap(\.permission))
        return (origin(of: grant).scopes.filter { !declined.contains($0) }, declined)
    }

    func lostLeadAccess(_ grant: Grant, now: Date) -> Bool {
        happened(grant, now: now).contains { $0.kind == .loseLeadAccess }
    }

    /// The Pages the token reaches: a Page token its own, a user token those the user manages.
    func pages(_ grant: Grant) -> [String] {
        grant.kind == .page ? [grant.pageID!] : origin(of: grant).pages
    }

    /// Whether `appsecret_proof` (and `appsecret_time`, for the time-stamped form Meta's
    /// login-security guide describes) is the HMAC-SHA256 of the token keyed with the app secret.
    func proofMatches(_ proof: String, token: String, time: String?, now: Date) -> Bool {
        let message: String
        if let time {
            guard let seconds = TimeInterval(time), abs(seconds - now.timeIntervalSince1970) <= 300 else { return false }
            message = "\(token)|\(time)"
        } else {
            message = token
        }
        let mac = HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: SymmetricKey(data: Data(appSecret.utf8)))
        return Hex.lowercase(mac) == proof.lowercased()
    }
}

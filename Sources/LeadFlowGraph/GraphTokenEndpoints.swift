import Foundation
import LeadFlowCore

/// The endpoints that say what a token may do: `debug_token`, `me/permissions`,
/// `me/accounts`, a Page's `has_lead_access`, and the long-lived token exchange.
extension GraphClient {
    public struct DebugToken: Sendable, Equatable {
        public let isValid: Bool
        public let appID: String?
        public let userID: String?
        /// USER, PAGE or SYSTEM_USER.
        public let type: String?
        /// A Page token's Page.
        public let profileID: String?
        /// nil when Facebook says 0 ("never").
        public let expiresAt: Date?
        public let dataAccessExpiresAt: Date?
        public let scopes: [String]
        /// Scope → the objects (Pages) it was granted on, for scopes Graph lists with `target_ids`.
        public let granularTargets: [String: [String]]
        /// For an invalid token: Graph's code and subcode (190/463 expired, 460 password changed, …).
        public let errorCode: Int?
        public let errorSubcode: Int?

        public var leadsTargetIDs: [String]? { granularTargets["leads_retrieval"] }
    }

    /// `GET /debug_token?input_token=…`, asked with the app token (`APP_ID|APP_SECRET`).
    /// Meta's debugging guide: `expires_at` and `data_access_expires_at` of 0 mean "never".
    public func debugToken(_ token: AccessToken, appToken: AccessToken) async throws -> DebugToken {
        struct Body: Decodable {
            struct Data: Decodable {
                struct Granular: Decodable { let scope: String; let target_ids: [String]? }
                struct Failure: Decodable { let code: Int?; let subcode: Int? }
                let is_valid: Bool?
                let app_id: String?
                let user_id: String?
                let profile_id: String?
                let type: String?
                let expires_at: Int64?
                let data_access_expires_at: Int64?
                let scopes: [String]?
                let granular_scopes: [Granular]?
                let error: Failure?
            }
            let data: Data
        }
        let body = try await object(Body.self, path: "debug_token", query: [("input_token", token.secret)],
                                    token: appToken, context: "debug_token")
        let data = body.data
        var targets: [String: [String]] = [:]
        for entry in data.granular_scopes ?? [] { if let ids = entry.target_ids { targets[entry.scope] = ids } }
        return DebugToken(isValid: data.is_valid ?? false, appID: data.app_id, userID: data.user_id, type: data.type,
                          profileID: data.profile_id, expiresAt: GraphInstant.date(data.expires_at),
                          dataAccessExpiresAt: GraphInstant.date(data.data_access_expires_at), scopes: data.scopes ?? [],
                          granularTargets: targets, errorCode: data.error?.code, errorSubcode: data.error?.subcode)
    }

    /// `GET /me?fields=id,name` with a user token: who the Connector Authenticator is.
    public func me(_ token: AccessToken) async throws -> (id: String, name: String?) {
        struct Body: Decodable { let id: String; let name: String? }
        let body = try await object(Body.self, path: "me", query: [("fields", "id,name")], token: token, context: "me")
        return (body.id, body.name)
    }

    /// `GET /me/permissions`: permission → `granted` or `declined`.
    public func permissions(_ token: AccessToken) async throws -> [String: String] {
        struct Body: Decodable {
            struct Entry: Decodable { let permission: String; let status: String }
            let data: [Entry]
        }
        let body = try await object(Body.self, path: "me/permissions", token: token, context: "me/permissions")
        return Dictionary(body.data.map { ($0.permission, $0.status) }, uniquingKeysWith: { first, _ in first })
    }

    public struct LeadAccess: Sendable, Equatable {
        public let canAccessLead: Bool
        public let failureReason: String?
        public let failureResolution: String?
    }

    /// `GET /{page}?fields=has_lead_access.user_id({user})`: can this user retrieve leads here?
    public func leadAccess(pageID: String, userID: String, token: AccessToken) async throws -> LeadAccess {
        struct Body: Decodable {
            struct Access: Decodable {
                let can_access_lead: Bool?
                let failure_reason: String?
                let failure_resolution: String?
            }
            let has_lead_access: Access?
        }
        let body = try await object(Body.self, path: pageID, query: [("fields", "has_lead_access.user_id(\(userID))")],
                                    token: token, context: "lead access on page \(pageID)")
        let access = body.has_lead_access
        return LeadAccess(canAccessLead: access?.can_access_lead ?? false, failureReason: access?.failure_reason,
                          failureResolution: access?.failure_resolution)
    }

    public struct PageAccount: Sendable, Equatable {
        public let id: String
        public let name: String
        public let token: AccessToken
        /// The user's tasks on the Page (ADVERTISE, MANAGE_LEADS, MANAGE, …).
        public let tasks: [String]
    }

    /// `GET /me/accounts`: the Pages a user token reaches, each with its Page token.
    public func accounts(_ token: AccessToken) async throws -> [PageAccount] {
        struct Entry: Decodable, Sendable {
            let id: String
            let name: String?
            let access_token: String?
            let tasks: [String]?
        }
        var accounts: [PageAccount] = []
        _ = try await paginate(path: "me/accounts", query: [("fields", "id,name,access_token,tasks")], token: token,
                               context: "me/accounts") { (page: GraphList<Entry>, _: Data) in
            accounts += page.data.compactMap { entry in
                entry.access_token.map { PageAccount(id: entry.id, name: entry.name ?? "", token: AccessToken($0), tasks: entry.tasks ?? []) }
            }
        }
        return accounts
    }

    /// Exchanges a short-lived user token for a long-lived one (≈ 60 days), server-side.
    /// The app secret travels as `client_secret`, as Meta's long-lived-token guide says.
    public func exchangeForLongLived(_ token: AccessToken, appID: String, appSecret: String) async throws -> (token: AccessToken, expiresIn: Int?) {
        struct Body: Decodable { let access_token: String; let expires_in: Int? }
        let body = try await object(Body.self, path: "oauth/access_token",
                                    query: [("grant_type", "fb_exchange_token"), ("client_id", appID),
                                            ("client_secret", appSecret), ("fb_exchange_token", token.secret)],
                                    token: nil, context: "token exchange")
        return (AccessToken(body.access_token), body.expires_in)
    }
}

/// Graph's instants in seconds since 1970; 0 means "never". Values beyond any real date
/// (a corrupt or hostile answer) are clamped instead of trapping on conversion.
enum GraphInstant {
    static func date(_ seconds: Int64?) -> Date? {
        guard let seconds, seconds > 0 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(min(seconds, 253_402_300_799)))
    }
}

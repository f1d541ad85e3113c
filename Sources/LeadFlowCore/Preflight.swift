import Foundation

/// What Graph said about a connection's Page token, read from its `debug_token` and the
/// Page's `has_lead_access` (never from the user token, which ends after ~60 days).
public struct TokenFacts: Sendable, Equatable {
    public var isValid: Bool
    public var appID: String?
    public var userID: String?
    public var type: String?
    /// nil when Facebook says 0 ("never").
    public var expiresAt: Date?
    public var dataAccessExpiresAt: Date?
    /// Permission → "granted" or "declined" (the token's scopes; `me/permissions` at connect).
    public var permissions: [String: String]
    /// Scope → the Pages it was granted on, for the scopes Graph lists in `granular_scopes`.
    public var granularTargets: [String: [String]]
    public var canAccessLeads: Bool?
    /// Graph's own words on why lead access fails, and what to do.
    public var leadAccessFailure: String?
    /// For an invalid token, `debug_token`'s error subcode (463 expired, 460 password changed, 493 data access).
    public var errorSubcode: Int?

    public init(isValid: Bool, appID: String? = nil, userID: String? = nil, type: String? = nil, expiresAt: Date? = nil,
                dataAccessExpiresAt: Date? = nil, permissions: [String: String] = [:], granularTargets: [String: [String]] = [:],
                canAccessLeads: Bool? = nil, leadAccessFailure: String? = nil, errorSubcode: Int? = nil) {
        self.isValid = isValid
        self.appID = appID
        self.userID = userID
        self.type = type
        self.expiresAt = expiresAt
        self.dataAccessExpiresAt = dataAccessExpiresAt
        self.permissions = permissions
        self.granularTargets = granularTargets
        self.canAccessLeads = canAccessLeads
        self.leadAccessFailure = leadAccessFailure
        self.errorSubcode = errorSubcode
    }
}

/// The verdict on one connection before a run (or on a token being connected).
public enum ConnectionVerdict: Sendable, Equatable {
    case healthy
    case reminderDue
    /// The connection cannot deliver leads: since `since`, for `cause`.
    case void(cause: VoidCause, detail: String, since: Date)

    /// Healthy or due for a reminder: leads can be read.
    public var isFit: Bool {
        if case .void = self { return false }
        return true
    }
}

/// The pure rules of the preflight: no I/O, every boundary testable.
public enum PreflightRules {
    /// The permissions a Connector Authenticator's token needs for leads with ad data.
    public static let defaultRequiredPermissions = ["leads_retrieval", "pages_show_list", "pages_read_engagement",
                                                    "pages_manage_ads", "ads_management"]

    /// The Page-scoped permissions whose grant must name the Page (`granular_scopes` target_ids).
    public static let pageScopedPermissions = ["leads_retrieval", "pages_manage_ads", "pages_read_engagement", "pages_show_list"]

    /// Judges Graph's answers. The void period starts at the earliest evidence: the expiry
    /// instant when Facebook says the token has expired, else `now` (the first failed check).
    public static func judge(_ facts: TokenFacts, pageID: String, requiredPermissions: [String],
                             policy: TokenPolicy.Evaluation, now: Date) -> ConnectionVerdict {
        if case .expired(let cause) = policy.status {
            return .void(cause: cause, detail: "the 90-day authentication ended (or Facebook's earlier expiry)", since: policy.expiresAt)
        }
        if !facts.isValid {
            switch facts.errorSubcode {
            case 493:
                return .void(cause: .dataAccessExpired, detail: "Facebook's data access expired",
                             since: min(facts.dataAccessExpiresAt ?? now, now))
            case 458, 459, 460, 464, 467:
                return .void(cause: .tokenInvalidated, detail: "Facebook ended the session (\(GraphSubcodes.meaning(facts.errorSubcode)))", since: now)
            default:
                break
            }
            if let expires = facts.expiresAt, expires <= now {
                return .void(cause: .tokenExpired, detail: "Facebook says the token expired", since: expires)
            }
            if let dataAccess = facts.dataAccessExpiresAt, dataAccess <= now {
                return .void(cause: .dataAccessExpired, detail: "Facebook's data access expired", since: dataAccess)
            }
            return .void(cause: .tokenInvalidated, detail: "Facebook says the token is no longer valid", since: now)
        }
        let missing = requiredPermissions.filter { facts.permissions[$0] != "granted" }
        if !missing.isEmpty {
            return .void(cause: .permissionRevoked, detail: "missing permission: \(missing.joined(separator: ", "))", since: now)
        }
        if let targets = facts.granularTargets["leads_retrieval"], !targets.contains(pageID) {
            return .void(cause: .leadAccessLost, detail: "the token's leads_retrieval does not cover Page \(pageID)", since: now)
        }
        let uncovered = pageScopedPermissions.filter { scope in
            requiredPermissions.contains(scope) && facts.granularTargets[scope].map { !$0.contains(pageID) } == true
        }
        if !uncovered.isEmpty {
            return .void(cause: .permissionRevoked, detail: "\(uncovered.joined(separator: ", ")) not granted on Page \(pageID)", since: now)
        }
        if facts.canAccessLeads == false {
            return .void(cause: .leadAccessLost, detail: facts.leadAccessFailure ?? "the user cannot access leads on this Page", since: now)
        }
        if case .reminderDue = policy.status { return .reminderDue }
        return .healthy
    }

    /// What a Facebook admin must do about each cause (for errors, `status` and docs/connections.md).
    public static func remedy(for cause: VoidCause) -> String {
        switch cause {
        case .tokenExpired, .dataAccessExpired:
            return "the Connector Authenticator must reauthenticate the Page (leadflow connect with a fresh token)"
        case .tokenInvalidated:
            return "the Connector Authenticator's session ended (password change, logout, app removed): reauthenticate"
        case .permissionRevoked:
            return "grant the missing permission to the app in Facebook (Business Integrations), then reauthenticate"
        case .leadAccessLost:
            return "give the user a Page task that allows leads (ADVERTISE, MANAGE_LEADS or MANAGE) and, if the Leads Access Manager is customised, add them there; then reauthenticate"
        }
    }
}

/// What Graph's token subcodes mean, for people reading a void period's detail.
public enum GraphSubcodes {
    public static func meaning(_ subcode: Int?) -> String {
        switch subcode {
        case 458: return "app removed by the user"
        case 459: return "user checkpointed"
        case 460: return "password changed"
        case 463: return "token expired"
        case 464: return "unconfirmed user"
        case 467: return "user logged out"
        case 493: return "data access expired"
        default: return "token invalid"
        }
    }
}

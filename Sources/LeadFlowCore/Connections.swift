import Foundation

/// A connection as stored: the Page, its authenticator, its sealed Page token, its cycle.
public struct ConnectionRecord: Sendable, Equatable {
    public let id: Int64
    public let instance: String
    public let pageID: String
    public let label: String
    public let pageName: String?
    public let authenticatorUserID: String
    /// The Connector Authenticator's name, as Facebook gave it at `connect`.
    public let authenticatorName: String?
    /// The Page token, sealed. The user token is never kept: it ends after ~60 days, and
    /// nothing that runs daily may depend on it.
    public let tokenCiphertext: Data
    public let tokenKeyID: String
    public let tokenType: String
    public let scopes: [String]
    public let authenticatedAt: Date
    /// When the long-lived user token of the last (re)authentication ends (informational).
    public let userTokenExpiresAt: Date?
    /// The Page token's own end; nil when Facebook says 0 ("never").
    public let facebookExpiresAt: Date?
    public let facebookDataAccessExpiresAt: Date?
    public let openVoidPeriod: VoidPeriod?
    /// The last time Graph said the token and its permissions were fine.
    public let verifiedAt: Date?

    /// What binds a sealed token to this connection (associated data of AES-GCM).
    public var sealContext: String { Self.sealContext(instance: instance, pageID: pageID) }
    public static func sealContext(instance: String, pageID: String) -> String { "leadflow/\(instance)/\(pageID)" }

    /// The Page's name when known, else its id: what people read.
    public var pageTitle: String { pageName ?? "Page \(pageID)" }
    /// The authenticator's name when known, else the Facebook user id.
    public var authenticatorTitle: String { authenticatorName ?? "Facebook user \(authenticatorUserID)" }

    public init(id: Int64, instance: String, pageID: String, label: String, pageName: String?, authenticatorUserID: String,
                authenticatorName: String? = nil, tokenCiphertext: Data, tokenKeyID: String, tokenType: String, scopes: [String],
                authenticatedAt: Date, userTokenExpiresAt: Date? = nil, facebookExpiresAt: Date?, facebookDataAccessExpiresAt: Date?,
                openVoidPeriod: VoidPeriod?, verifiedAt: Date? = nil) {
        self.id = id
        self.instance = instance
        self.pageID = pageID
        self.label = label
        self.pageName = pageName
        self.authenticatorUserID = authenticatorUserID
        self.authenticatorName = authenticatorName
        self.tokenCiphertext = tokenCiphertext
        self.tokenKeyID = tokenKeyID
        self.tokenType = tokenType
        self.scopes = scopes
        self.authenticatedAt = authenticatedAt
        self.userTokenExpiresAt = userTokenExpiresAt
        self.facebookExpiresAt = facebookExpiresAt
        self.facebookDataAccessExpiresAt = facebookDataAccessExpiresAt
        self.openVoidPeriod = openVoidPeriod
        self.verifiedAt = verifiedAt
    }
}

public struct VoidPeriod: Sendable, Equatable {
    public let id: Int64
    public let cause: VoidCause
    public let detail: String?
    public let startedAt: Date
    public let endedAt: Date?

    public init(id: Int64, cause: VoidCause, detail: String?, startedAt: Date, endedAt: Date?) {
        self.id = id
        self.cause = cause
        self.detail = detail
        self.startedAt = startedAt
        self.endedAt = endedAt
    }
}

/// What a (re)authentication stores.
public struct Authentication: Sendable {
    public var instance: String
    public var pageID: String
    public var label: String
    public var pageName: String?
    public var authenticatorUserID: String
    public var authenticatorName: String?
    public var tokenCiphertext: Data
    public var tokenKeyID: String
    public var tokenType: String
    public var scopes: [String]
    public var userTokenExpiresAt: Date?
    public var facebookExpiresAt: Date?
    public var facebookDataAccessExpiresAt: Date?
    /// Where the Connector Authenticator wants reminders (`connect --notify-email`), sealed.
    /// nil keeps the address already stored, unless the authenticator changed: a new
    /// person's reminders must not go to the last one's inbox.
    public var notifyAddress: SealedAddress?
    /// The new cycle's end and reminder under the policy, for the event that tells of it.
    public var expiresAt: Date?
    public var reminderAt: Date?

    public init(instance: String, pageID: String, label: String, pageName: String?, authenticatorUserID: String,
                authenticatorName: String? = nil, tokenCiphertext: Data, tokenKeyID: String, tokenType: String, scopes: [String],
                userTokenExpiresAt: Date? = nil, facebookExpiresAt: Date?, facebookDataAccessExpiresAt: Date?,
                notifyAddress: SealedAddress? = nil, expiresAt: Date? = nil, reminderAt: Date? = nil) {
        self.instance = instance
        self.pageID = pageID
        self.label = label
        self.pageName = pageName
        self.authenticatorUserID = authenticatorUserID
        self.authenticatorName = authenticatorName
        self.tokenCiphertext = tokenCiphertext
        self.tokenKeyID = tokenKeyID
        self.tokenType = tokenType
        self.scopes = scopes
        self.userTokenExpiresAt = userTokenExpiresAt
        self.facebookExpiresAt = facebookExpiresAt
        self.facebookDataAccessExpiresAt = facebookDataAccessExpiresAt
        self.notifyAddress = notifyAddress
        self.expiresAt = expiresAt
        self.reminderAt = reminderAt
    }
}

/// One row of `auth_events`.
public struct AuthEvent: Sendable, Equatable {
    public let kind: String
    public let at: Date
    public let cause: String?

    public init(kind: String, at: Date, cause: String?) {
        self.kind = kind
        self.at = at
        self.cause = cause
    }
}

/// What saving a (re)authentication did.
public struct AuthenticationSaved: Sendable, Equatable {
    public let connectionID: Int64
    public let reauthenticated: Bool
    /// The authenticator before, when it changed.
    public let previousAuthenticator: String?
    /// The void period this reauthentication closed.
    public let closedVoidPeriod: VoidPeriod?


    public init(connectionID: Int64, reauthenticated: Bool, previousAuthenticator: String?, closedVoidPeriod: VoidPeriod?) {
        self.connectionID = connectionID
        self.reauthenticated = reauthenticated
        self.previousAuthenticator = previousAuthenticator
        self.closedVoidPeriod = closedVoidPeriod
    }
}

/// A reminder in the outbox.
public struct Reminder: Sendable, Equatable {
    public let connectionLabel: String
    public let instance: String
    public let pageID: String
    public let kind: String
    public let dueAt: Date
    public let expiresAt: Date
    public let createdAt: Date
    public let deliveredAt: Date?

    public init(connectionLabel: String, instance: String, pageID: String, kind: String, dueAt: Date, expiresAt: Date, createdAt: Date, deliveredAt: Date?) {
        self.connectionLabel = connectionLabel
        self.instance = instance
        self.pageID = pageID
        self.kind = kind
        self.dueAt = dueAt
        self.expiresAt = expiresAt
        self.createdAt = createdAt
        self.deliveredAt = deliveredAt
    }
}


/// Where connections, their events, void periods and reminders live (Postgres in
/// production: `ConnectionStore`).
public protocol ConnectionRepository: Sendable {
    func all() async throws -> [ConnectionRecord]
    func connection(label: String) async throws -> ConnectionRecord?
    func connection(instance: String, pageID: String) async throws -> ConnectionRecord?
    func saveAuthentication(_ auth: Authentication, now: Date) async throws -> AuthenticationSaved
    /// Opens a void period, deciding under the connection's row lock, in the transaction that
    /// writes it: when `cycle` (the authentication the caller's verdict was about) is no
    /// longer the connection's, a reauthentication came in meanwhile and nothing is voided.
    @discardableResult
    func openVoidPeriod(connectionID: Int64, cause: VoidCause, detail: String, since: Date, now: Date,
                        cycle: Date?) async throws -> VoidOpening
    /// A successful check of the token of authentication `cycle`, with what Facebook now says
    /// of the Page token's end and data access; nothing when the connection was reauthenticated since.
    func recordVerified(connectionID: Int64, facebookExpiresAt: Date?, dataAccessExpiresAt: Date?, now: Date, cycle: Date) async throws
    @discardableResult
    func writeReminder(connectionID: Int64, kind: String, cycleStartedAt: Date, dueAt: Date, expiresAt: Date, now: Date) async throws -> Bool
    func reminders() async throws -> [Reminder]
    func authEvents(connectionID: Int64) async throws -> [AuthEvent]
    func voidPeriods(connectionID: Int64) async throws -> [VoidPeriod]
}

/// Seals tokens for storage and opens them again (AES-GCM with a key file: `TokenVault`).
public protocol TokenSealer: Sendable {
    var keyID: String { get }
    func seal(_ token: AccessToken, boundTo context: String) throws -> Data
    func open(_ sealed: Data, boundTo context: String, keyID: String) throws -> AccessToken
}

extension ConnectionRecord {
    /// Where this connection stands in its authentication cycle under `policy` at `now`.
    public func evaluate(_ policy: TokenPolicy, now: Date) -> TokenPolicy.Evaluation {
        policy.evaluate(authenticatedAt: authenticatedAt, facebookExpiresAt: facebookExpiresAt,
                        facebookDataAccessExpiresAt: facebookDataAccessExpiresAt, now: now)
    }
}

/// What asking to open a void period did.
public enum VoidOpening: Sendable, Equatable {
    case opened
    /// A void period was already open.
    case alreadyOpen
    /// The connection was reauthenticated after the verdict's authentication: the verdict
    /// was about a token it no longer uses, and nothing was voided.
    case reauthenticated

    public var opened: Bool { self == .opened }
}

extension ConnectionRepository {
    /// Without a cycle to check (tools and tests that void a connection outright).
    @discardableResult
    public func openVoidPeriod(connectionID: Int64, cause: VoidCause, detail: String, since: Date, now: Date) async throws -> VoidOpening {
        try await openVoidPeriod(connectionID: connectionID, cause: cause, detail: detail, since: since, now: now, cycle: nil)
    }
}

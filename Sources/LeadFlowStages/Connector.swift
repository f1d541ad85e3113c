import Foundation
import LeadFlowCore
import LeadFlowGraph
import Logging

/// `leadflow connect` refused a token: what is missing, and what the Facebook admin must do.
public struct ConnectRefusal: LeadFlowError, Equatable {
    public let reason: String
    public let remedy: String
    public var code: String { "connect.refused" }
    public var disposition: Disposition { .fatal }
    public var description: String { "\(code): \(reason). To fix: \(remedy)" }
}

/// What `connect` did.
public struct ConnectResult: Sendable, Equatable {
    public let saved: AuthenticationSaved
    public let authenticatorUserID: String
    public let expiresAt: Date
    public let reminderAt: Date
}

/// Authenticates a Page into an instance: checks the token like a preflight would, seals
/// it, and stores it. On an existing connection this is the reauthentication that closes
/// the open void period.
public struct Connector {
    let graph: GraphClient
    let repository: any ConnectionRepository
    let sealer: any TokenSealer
    let settings: ValidationSettings
    let logger: Logger

    public init(graph: GraphClient, repository: any ConnectionRepository, sealer: any TokenSealer,
                settings: ValidationSettings, logger: Logger = Logger(label: "leadflow.connect")) {
        self.graph = graph
        self.repository = repository
        self.sealer = sealer
        self.settings = settings
        self.logger = logger
    }

    public struct Request: Sendable {
        public var instance: String
        public var pageID: String
        public var label: String
        public var token: AccessToken

        public init(instance: String, pageID: String, label: String, token: AccessToken) {
            self.instance = instance
            self.pageID = pageID
            self.label = label
            self.token = token
        }
    }

    /// Tasks on a Page that allow leads retrieval.
    static let leadTasks: Set<String> = ["ADVERTISE", "MANAGE_LEADS", "MANAGE"]

    public func connect(_ request: Request, now: Date) async throws -> ConnectResult {
        let given = try await refuseIfVoid { try await graph.debugToken(request.token, appToken: settings.appToken) }
        guard given.isValid else {
            throw ConnectRefusal(reason: "Facebook says this token is not valid (expired or invalidated)",
                                 remedy: "get a fresh token from the Connector Authenticator (Graph API Explorer or the OAuth flow)")
        }
        if let appID = settings.appID, let tokenApp = given.appID, tokenApp != appID {
            throw ConnectRefusal(reason: "the token was issued to app \(tokenApp), not to the configured app \(appID)",
                                 remedy: "create the token with the LeadFlow app (LEADFLOW_APP_ID)")
        }

        var pageToken = request.token
        var userToken: AccessToken?
        var pageName: String?
        if given.type == "USER" {
            var user = request.token
            if let appID = settings.appID, let secret = settings.appSecret {
                // A short-lived user token lasts an hour: exchange it server-side for a long-lived one.
                user = try await refuseIfVoid { try await graph.exchangeForLongLived(user, appID: appID, appSecret: secret) }
            }
            let accounts = try await refuseIfVoid { try await graph.accounts(user) }
            guard let account = accounts.first(where: { $0.id == request.pageID }) else {
                throw ConnectRefusal(reason: "the user has no role on Page \(request.pageID)",
                                     remedy: "a Page admin must give the Connector Authenticator a Page task that allows leads (ADVERTISE, MANAGE_LEADS or MANAGE)")
            }
            guard !Self.leadTasks.isDisjoint(with: account.tasks) else {
                throw ConnectRefusal(reason: "the user's tasks on Page \(request.pageID) (\(account.tasks.joined(separator: ", "))) do not allow leads",
                                     remedy: "a Page admin must grant ADVERTISE, MANAGE_LEADS or MANAGE")
            }
            pageToken = account.token
            pageName = account.name
            userToken = user
        }

        let page = try await refuseIfVoid { try await graph.debugToken(pageToken, appToken: settings.appToken) }
        guard let userID = given.userID ?? page.userID else {
            throw ConnectRefusal(reason: "Facebook does not say which user this token belongs to",
                                 remedy: "use a user or Page token of the Connector Authenticator, not an app token")
        }
        let permissions = try await refuseIfVoid {
            if let userToken { return try await graph.permissions(userToken) }
            return Dictionary(page.scopes.map { ($0, "granted") }, uniquingKeysWith: { first, _ in first })
        }
        let access = try await refuseIfVoid { try await graph.leadAccess(pageID: request.pageID, userID: userID, token: pageToken) }
        let facts = TokenFacts(isValid: page.isValid, appID: page.appID, userID: userID, type: page.type, expiresAt: page.expiresAt,
                               dataAccessExpiresAt: page.dataAccessExpiresAt, permissions: permissions,
                               leadsTargetIDs: page.leadsTargetIDs, canAccessLeads: access.canAccessLead,
                               leadAccessFailure: [access.failureReason, access.failureResolution].compactMap { $0 }.joined(separator: " ").nilIfEmpty)
        let evaluation = settings.policy.evaluate(authenticatedAt: now, facebookExpiresAt: page.expiresAt,
                                                  facebookDataAccessExpiresAt: page.dataAccessExpiresAt, now: now)
        if case .void(let cause, let detail, _) = PreflightRules.judge(facts, pageID: request.pageID,
                                                                       requiredPermissions: settings.requiredPermissions,
                                                                       policy: evaluation, now: now) {
            throw ConnectRefusal(reason: "\(cause.rawValue): \(detail)", remedy: PreflightRules.remedy(for: cause))
        }

        let context = ConnectionRecord.sealContext(instance: request.instance, pageID: request.pageID)
        let saved = try repository.saveAuthentication(Authentication(
            instance: request.instance, pageID: request.pageID, label: request.label, pageName: pageName,
            authenticatorUserID: userID, tokenCiphertext: try sealer.seal(pageToken, boundTo: context),
            userTokenCiphertext: try userToken.map { try sealer.seal($0, boundTo: context) }, tokenKeyID: sealer.keyID,
            tokenType: page.type ?? given.type ?? "PAGE", scopes: page.scopes,
            facebookExpiresAt: page.expiresAt, facebookDataAccessExpiresAt: page.dataAccessExpiresAt), now: now)
        logger.info("connected", metadata: ["connection.id": "\(saved.connectionID)", "connection.label": "\(request.label)",
                                            "connection.reauthenticated": "\(saved.reauthenticated)"])
        return ConnectResult(saved: saved, authenticatorUserID: userID, expiresAt: evaluation.expiresAt,
                             reminderAt: evaluation.reminderAt)
    }

    /// A Graph answer that would make a connection void refuses the connect instead.
    private func refuseIfVoid<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as GraphError where error.voidCause != nil {
            throw ConnectRefusal(reason: "\(error.voidCause!.rawValue): \(error.message)", remedy: PreflightRules.remedy(for: error.voidCause!))
        }
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}

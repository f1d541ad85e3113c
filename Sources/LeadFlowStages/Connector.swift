import Foundation
import LeadFlowCore
import LeadFlowGraph
import Logging

/// `leadflow connect` refused a token or a Page: what is missing, and what the Facebook admin must do.
public struct ConnectRefusal: LeadFlowError, Equatable {
    public let reason: String
    public let remedy: String
    public var code: String { "connect.refused" }
    public var disposition: Disposition { .fatal }
    public var description: String { "\(code): \(reason). To fix: \(remedy)" }
}

/// What `connect` did for one Page.
public struct ConnectResult: Sendable, Equatable {
    public let saved: AuthenticationSaved
    public let label: String
    public let pageName: String?
    public let authenticatorUserID: String
    public let authenticatorName: String?
    public let expiresAt: Date
    public let reminderAt: Date
}

/// Authenticates Pages into an instance with one Connector Authenticator's token, the way
/// Facebook issues tokens (`GRAPH_API.md`, "Tokens and the 90 days"): a user token is
/// exchanged once for a long-lived one, `me/accounts` gives each Page its own Page token
/// (which never expires when got with a long-lived user token), and only the Page token is
/// kept. Each Page is checked like a preflight would, then sealed and stored; on an
/// existing connection this is the reauthentication that closes the open void period.
public struct Connector {
    let graph: GraphClient
    let repository: any ConnectionRepository
    let sealer: any TokenSealer
    let settings: ValidationSettings
    let logger: Logger
    /// Pages checked at once (each takes two Graph calls).
    let concurrency: Int

    public init(graph: GraphClient, repository: any ConnectionRepository, sealer: any TokenSealer,
                settings: ValidationSettings, logger: Logger = Logger(label: "leadflow.connect"), concurrency: Int = 16) {
        self.graph = graph
        self.repository = repository
        self.sealer = sealer
        self.settings = settings
        self.logger = logger
        self.concurrency = max(1, concurrency)
    }

    public enum Pages: Sendable, Equatable {
        case these([String])
        /// Every Page the user's token reaches (`me/accounts`).
        case all
    }

    public struct Request: Sendable {
        public var instance: String
        public var pages: Pages
        /// The label of a single Page's connection (default: its Page's name, made a label).
        public var label: String?
        public var token: AccessToken
        /// Where the Connector Authenticator wants reminders and voids told; sealed like
        /// the token for each Page. nil keeps the address a reauthentication finds.
        public var notifyEmail: EmailAddress?

        public init(instance: String, pages: Pages, label: String? = nil, token: AccessToken, notifyEmail: EmailAddress? = nil) {
            self.instance = instance
            self.pages = pages
            self.label = label
            self.token = token
            self.notifyEmail = notifyEmail
        }

        public init(instance: String, pageID: String, label: String?, token: AccessToken, notifyEmail: EmailAddress? = nil) {
            self.init(instance: instance, pages: .these([pageID]), label: label, token: token, notifyEmail: notifyEmail)
        }
    }

    /// One Page's outcome: connected (or reauthenticated), or refused with the reason.
    public struct PageOutcome: Sendable {
        public let pageID: String
        public let pageName: String?
        public let result: Result<ConnectResult, ConnectRefusal>
    }

    /// Tasks on a Page that allow leads retrieval.
    static let leadTasks: Set<String> = ["ADVERTISE", "MANAGE_LEADS", "MANAGE"]

    /// A single Page: its result, or its refusal thrown.
    public func connect(_ request: Request, now: Date) async throws -> ConnectResult {
        let outcomes = try await connectPages(request, now: now)
        guard let first = outcomes.first else {
            throw ConnectRefusal(reason: "the token reaches no Page", remedy: "authenticate with a user who manages the Page")
        }
        return try first.result.get()
    }

    /// Every requested Page, in the order asked (or `me/accounts` order). Refusals that
    /// concern the token as a whole (invalid, another app's, no app secret) are thrown;
    /// a Page's own refusal is its outcome, and the other Pages go on.
    public func connectPages(_ request: Request, now: Date) async throws -> [PageOutcome] {
        let app = try settings.app()
        let appToken = try settings.appToken()
        let given = try await Self.refuseIfVoid { try await graph.debugToken(request.token, appToken: appToken) }
        guard given.isValid else {
            throw ConnectRefusal(reason: "Facebook says this token is not valid (\(GraphSubcodes.meaning(given.errorSubcode)))",
                                 remedy: "get a fresh token from the Connector Authenticator (the Facebook login dialog or the Graph API Explorer)")
        }
        if let tokenApp = given.appID, tokenApp != app.id {
            throw ConnectRefusal(reason: "the token was issued to app \(tokenApp), not to the configured app \(app.id)",
                                 remedy: "create the token with the LeadFlow app (LEADFLOW_APP_ID)")
        }
        if given.type == "PAGE" { return [try await connectPageToken(request, debug: given, now: now)] }

        // A user token: one exchange, one `me`, one `me/permissions`, one `me/accounts`, for every Page.
        let (user, expiresIn) = try await Self.refuseIfVoid {
            try await graph.exchangeForLongLived(request.token, appID: app.id, appSecret: app.secret)
        }
        let userTokenExpiresAt = expiresIn.map { now.addingTimeInterval(TimeInterval($0)) }
        let me = try await Self.refuseIfVoid { try await graph.me(user) }
        let permissions = try await Self.refuseIfVoid { try await graph.permissions(user) }
        let accounts = try await Self.refuseIfVoid { try await graph.accounts(user) }
        let byID = Dictionary(accounts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let pageIDs: [String]
        switch request.pages {
        case .these(let ids): pageIDs = ids
        case .all: pageIDs = accounts.map(\.id)
        }
        let identity = Identity(userID: me.id, name: me.name, userTokenExpiresAt: userTokenExpiresAt, permissions: permissions)
        // Facebook first, several Pages at once (two calls each); then each Page judged and
        // stored in turn, on the one database session.
        let checks = try await Self.checkPages(pageIDs.compactMap { byID[$0] }, graph: graph, appToken: appToken,
                                               userID: me.id, concurrency: concurrency)
        var outcomes: [PageOutcome] = []
        for pageID in pageIDs {
            guard let account = byID[pageID] else {
                outcomes.append(PageOutcome(pageID: pageID, pageName: nil, result: .failure(ConnectRefusal(
                    reason: "the user has no role on Page \(pageID)",
                    remedy: "a Page admin must give the Connector Authenticator a Page task that allows leads (ADVERTISE, MANAGE_LEADS or MANAGE)"))))
                continue
            }
            guard !Self.leadTasks.isDisjoint(with: account.tasks) else {
                outcomes.append(PageOutcome(pageID: pageID, pageName: account.name, result: .failure(ConnectRefusal(
                    reason: "the user's tasks on Page \(pageID) (\(account.tasks.joined(separator: ", "))) do not allow leads",
                    remedy: "a Page admin must grant ADVERTISE, MANAGE_LEADS or MANAGE"))))
                continue
            }
            outcomes.append(await outcome(pageID: pageID, pageName: account.name) {
                let check = try checks[pageID]!.get()
                return try await connectPage(instance: request.instance, pageID: pageID, pageName: account.name,
                                       label: pageIDs.count == 1 ? request.label : nil, pageToken: account.token,
                                       debug: check.debug, access: check.access, identity: identity,
                                       notifyEmail: request.notifyEmail, now: now)
            })
        }
        return outcomes
    }

    /// What Facebook says of one Page's token.
    struct PageCheck: Sendable {
        let debug: GraphClient.DebugToken
        let access: GraphClient.LeadAccess?
    }

    /// `debug_token` of each Page token, and `has_lead_access` where the token is valid,
    /// `concurrency` Pages at once.
    static func checkPages(_ accounts: [GraphClient.PageAccount], graph: GraphClient, appToken: AccessToken, userID: String,
                           concurrency: Int) async throws -> [String: Result<PageCheck, ConnectRefusal>] {
        try await withThrowingTaskGroup(of: (String, Result<PageCheck, ConnectRefusal>).self) { group in
            var pending = accounts[...]
            func start() {
                guard let account = pending.popFirst() else { return }
                group.addTask {
                    do {
                        let debug = try await refuseIfVoid { try await graph.debugToken(account.token, appToken: appToken) }
                        let access = debug.isValid
                            ? try await refuseIfVoid { try await graph.leadAccess(pageID: account.id, userID: userID, token: account.token) }
                            : nil
                        return (account.id, .success(PageCheck(debug: debug, access: access)))
                    } catch let refusal as ConnectRefusal {
                        return (account.id, .failure(refusal))
                    } catch {
                        let reason = (error as? any LeadFlowError)?.description ?? "\(error)"
                        return (account.id, .failure(ConnectRefusal(reason: "Facebook could not be asked about Page \(account.id) (\(reason))",
                                                                     remedy: "run connect again for this Page")))
                    }
                }
            }
            for _ in 0..<concurrency { start() }
            var checks: [String: Result<PageCheck, ConnectRefusal>] = [:]
            while let (pageID, check) = try await group.next() {
                checks[pageID] = check
                start()
            }
            return checks
        }
    }

    /// Who authenticated, as the user token said at connect.
    struct Identity {
        let userID: String
        let name: String?
        let userTokenExpiresAt: Date?
        let permissions: [String: String]?
    }

    /// A Page token handed over as it is: it must be this Page's, and it must outlive the
    /// cycle's reminder (one got with a short-lived user token ends within the hour).
    private func connectPageToken(_ request: Request, debug: GraphClient.DebugToken, now: Date) async throws -> PageOutcome {
        guard let pageID = debug.profileID else {
            throw ConnectRefusal(reason: "Facebook does not say which Page this Page token is for", remedy: "use the Page's own token or a user token")
        }
        if case .these(let ids) = request.pages, ids != [pageID] {
            throw ConnectRefusal(reason: "this Page token is for Page \(pageID), not for \(ids.joined(separator: ", "))",
                                 remedy: "give a user token (LeadFlow gets each Page's token itself) or that Page's own token")
        }
        guard let userID = debug.userID else {
            throw ConnectRefusal(reason: "Facebook does not say which user this token belongs to",
                                 remedy: "use a Page token of the Connector Authenticator, not an app or system token")
        }
        let identity = Identity(userID: userID, name: nil, userTokenExpiresAt: nil, permissions: nil)
        let access = debug.isValid
            ? try await Self.refuseIfVoid { try await graph.leadAccess(pageID: pageID, userID: userID, token: request.token) } : nil
        return await outcome(pageID: pageID, pageName: nil) {
            try await connectPage(instance: request.instance, pageID: pageID, pageName: nil, label: request.label,
                                  pageToken: request.token, debug: debug, access: access, identity: identity,
                                  notifyEmail: request.notifyEmail, now: now)
        }
    }

    private func outcome(pageID: String, pageName: String?, _ body: () async throws -> ConnectResult) async -> PageOutcome {
        do {
            let result = try await body()
            return PageOutcome(pageID: pageID, pageName: result.pageName ?? pageName, result: .success(result))
        } catch let refusal as ConnectRefusal {
            return PageOutcome(pageID: pageID, pageName: pageName, result: .failure(refusal))
        } catch {
            let reason = (error as? any LeadFlowError)?.description ?? "\(error)"
            return PageOutcome(pageID: pageID, pageName: pageName, result: .failure(ConnectRefusal(
                reason: "Page \(pageID) could not be stored (\(reason))", remedy: "run connect again for this Page")))
        }
    }

    /// Checks one Page's token like a preflight, then seals and stores it.
    private func connectPage(instance: String, pageID: String, pageName: String?, label: String?, pageToken: AccessToken,
                             debug page: GraphClient.DebugToken, access: GraphClient.LeadAccess?, identity: Identity,
                             notifyEmail: EmailAddress?, now: Date) async throws -> ConnectResult {
        guard page.isValid, let access else {
            throw ConnectRefusal(reason: "Facebook says the Page token is not valid (\(GraphSubcodes.meaning(page.errorSubcode)))",
                                 remedy: "reauthenticate with a fresh token")
        }
        let granted = Dictionary(page.scopes.map { ($0, "granted") }, uniquingKeysWith: { first, _ in first })
        let facts = TokenFacts(isValid: page.isValid, appID: page.appID, userID: identity.userID, type: page.type,
                               expiresAt: page.expiresAt, dataAccessExpiresAt: page.dataAccessExpiresAt,
                               permissions: identity.permissions.map { $0.merging(granted) { user, _ in user } } ?? granted,
                               granularTargets: page.granularTargets, canAccessLeads: access.canAccessLead,
                               leadAccessFailure: [access.failureReason, access.failureResolution].compactMap { $0 }.joined(separator: " ").nilIfEmpty)
        let evaluation = settings.policy.evaluate(authenticatedAt: now, facebookExpiresAt: page.expiresAt,
                                                  facebookDataAccessExpiresAt: page.dataAccessExpiresAt, now: now)
        if case .void(let cause, let detail, _) = PreflightRules.judge(facts, pageID: pageID, requiredPermissions: settings.requiredPermissions,
                                                                       policy: evaluation, now: now) {
            throw ConnectRefusal(reason: "Page \(pageID): \(cause.rawValue): \(detail)", remedy: PreflightRules.remedy(for: cause))
        }
        if let ends = page.expiresAt, ends <= now.addingTimeInterval(settings.policy.validity.timeInterval - settings.policy.reminderLead.timeInterval) {
            throw ConnectRefusal(reason: "the Page token for Page \(pageID) ends on \(UTCTime.iso8601(ends)) (it was got with a short-lived user token)",
                                 remedy: "connect with the Connector Authenticator's user token: LeadFlow exchanges it and gets a Page token that does not expire")
        }
        let existing = try await repository.connection(instance: instance, pageID: pageID)
        var chosenLabel = label ?? existing?.label ?? ""
        if chosenLabel.isEmpty { chosenLabel = try await freeLabel(for: pageName ?? "page-\(pageID)", instance: instance, pageID: pageID) }
        let context = ConnectionRecord.sealContext(instance: instance, pageID: pageID)
        let saved = try await repository.saveAuthentication(Authentication(
            instance: instance, pageID: pageID, label: chosenLabel, pageName: pageName, authenticatorUserID: identity.userID,
            authenticatorName: identity.name, tokenCiphertext: try sealer.seal(pageToken, boundTo: context), tokenKeyID: sealer.keyID,
            tokenType: page.type ?? "PAGE", scopes: page.scopes, userTokenExpiresAt: identity.userTokenExpiresAt,
            facebookExpiresAt: page.expiresAt, facebookDataAccessExpiresAt: page.dataAccessExpiresAt,
            notifyAddress: try notifyEmail.map { try sealer.seal(address: $0, instance: instance, pageID: pageID) },
            expiresAt: evaluation.expiresAt, reminderAt: evaluation.reminderAt), now: now)
        logger.info("connected", metadata: ["connection.id": "\(saved.connectionID)", "connection.label": "\(chosenLabel)",
                                            "connection.reauthenticated": "\(saved.reauthenticated)"])
        return ConnectResult(saved: saved, label: chosenLabel, pageName: pageName, authenticatorUserID: identity.userID,
                             authenticatorName: identity.name, expiresAt: evaluation.expiresAt, reminderAt: evaluation.reminderAt)
    }

    /// A label made from the Page's name (`Acme Analytics` → `acme-analytics`); when another
    /// connection holds it, the instance goes in front, then the Page id behind.
    func freeLabel(for name: String, instance: String, pageID: String) async throws -> String {
        let base = Self.slug(name).nilIfEmpty ?? "page-\(pageID)"
        for candidate in [base, "\(instance)-\(base)", "\(instance)-\(base)-\(pageID)"] {
            guard let holder = try await repository.connection(label: candidate) else { return candidate }
            if holder.instance == instance && holder.pageID == pageID { return candidate }
        }
        return "\(instance)-\(pageID)"
    }

    /// Letters and digits kept (lower-cased, accents dropped), everything else one '-'.
    static func slug(_ text: String) -> String {
        let folded = text.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: Locale(identifier: "en_US_POSIX")).lowercased()
        var out = ""
        for scalar in folded.unicodeScalars {
            if scalar.isASCII, CharacterSet.alphanumerics.contains(scalar) {
                out.unicodeScalars.append(scalar)
            } else if !out.isEmpty, !out.hasSuffix("-") {
                out += "-"
            }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return String(out.prefix(60))
    }

    /// A Graph answer that would make a connection void refuses the connect instead.
    static func refuseIfVoid<T>(_ body: () async throws -> T) async throws -> T {
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

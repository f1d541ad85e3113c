import Foundation
import LeadFlowCore
import LeadFlowGraph
import Logging

/// The first stage of every run: for each connection, the token policy, `debug_token`,
/// the permissions and lead access. A failure opens a void period at the earliest
/// evidence; a void connection is not extracted, and no lead request is ever sent on a
/// token known to be bad.
public struct PreflightStage {
    let graph: GraphClient
    let repository: any ConnectionRepository
    let sealer: any TokenSealer
    let settings: ValidationSettings
    let logger: Logger

    public init(graph: GraphClient, repository: any ConnectionRepository, sealer: any TokenSealer,
                settings: ValidationSettings, logger: Logger = Logger(label: "leadflow.preflight")) {
        self.graph = graph
        self.repository = repository
        self.sealer = sealer
        self.settings = settings
        self.logger = logger
    }

    public struct Result: Sendable, Equatable {
        public enum Outcome: Sendable, Equatable {
            case checked(ConnectionVerdict)
            /// Graph could not be asked (retries ran out, say): skip this connection this run.
            case unchecked(reason: String)
            /// The connection was reauthenticated while it was checked: the verdict was about
            /// the token it replaced, so nothing was recorded; the next run checks the new one.
            case superseded
        }
        public let connectionID: Int64
        public let label: String
        public let outcome: Outcome
        /// This check opened the void period (rather than finding it open).
        public let openedVoidPeriod: Bool
        public let wroteReminder: Bool
        /// The Page token, for extraction, when the connection is fit to extract.
        public let token: AccessToken?
    }

    /// Every connection, asking Graph whatever was verified before (`leadflow check`).
    public func checkAll(now: Date) async throws -> [Result] {
        var results: [Result] = []
        for record in try await repository.all() {
            results.append(try await check(record, now: now, recheck: true))
        }
        return results
    }

    /// - Parameter recheck: ask Graph even when the token was verified within
    ///   `settings.recheckAfter` (a run passes false: it asks once an hour at most).
    public func check(_ record: ConnectionRecord, now: Date, recheck: Bool = true) async throws -> Result {
        func result(_ outcome: Result.Outcome, opened: Bool = false, reminder: Bool = false, token: AccessToken? = nil) -> Result {
            Result(connectionID: record.id, label: record.label, outcome: outcome, openedVoidPeriod: opened, wroteReminder: reminder,
                   token: token)
        }
        // Already void: it stays void until reauthentication, and Graph is not asked.
        if let open = record.openVoidPeriod {
            return result(.checked(.void(cause: open.cause, detail: open.detail ?? "", since: open.startedAt)))
        }
        var evaluation = record.evaluate(settings.policy, now: now)
        if case .expired(let cause) = evaluation.status {
            let opening = try await repository.openVoidPeriod(connectionID: record.id, cause: cause, detail: "the authentication cycle ended",
                                                              since: evaluation.expiresAt, now: now, cycle: record.authenticatedAt)
            if opening == .reauthenticated { return result(.superseded) }
            let opened = opening.opened
            let reminder = try await repository.writeReminder(connectionID: record.id, kind: "expired", cycleStartedAt: record.authenticatedAt,
                                                        dueAt: evaluation.expiresAt, expiresAt: evaluation.expiresAt, now: now)
            log(record, "void", cause.rawValue)
            return result(.checked(.void(cause: cause, detail: "the authentication cycle ended", since: evaluation.expiresAt)),
                          opened: opened, reminder: reminder)
        }

        let pageToken = try sealer.open(record.tokenCiphertext, boundTo: record.sealContext, keyID: record.tokenKeyID)
        if !recheck, let verified = record.verifiedAt, verified >= record.authenticatedAt, verified <= now,
           now.timeIntervalSince(verified) < settings.recheckAfter.timeInterval {
            // Verified within the hour since the last (re)authentication: the same answers again.
            if case .reminderDue = evaluation.status {
                let reminder = try await repository.writeReminder(connectionID: record.id, kind: "reauthentication_due",
                                                            cycleStartedAt: record.authenticatedAt, dueAt: evaluation.reminderAt,
                                                            expiresAt: evaluation.expiresAt, now: now)
                return result(.checked(.reminderDue), reminder: reminder, token: pageToken)
            }
            return result(.checked(.healthy), token: pageToken)
        }
        let verdict: ConnectionVerdict
        var facts: TokenFacts?
        do {
            // Everything from the Page token: the user token ends after ~60 days, the Page
            // token got with a long-lived one does not (GRAPH_API.md, "Tokens and the 90 days").
            let debug = try await graph.debugToken(pageToken, appToken: try settings.appToken())
            var checked = TokenFacts(isValid: debug.isValid, appID: debug.appID, userID: debug.userID, type: debug.type,
                                     expiresAt: debug.expiresAt, dataAccessExpiresAt: debug.dataAccessExpiresAt,
                                     permissions: Dictionary(debug.scopes.map { ($0, "granted") }, uniquingKeysWith: { a, _ in a }),
                                     granularTargets: debug.granularTargets, errorSubcode: debug.errorSubcode)
            let fresh = settings.policy.evaluate(authenticatedAt: record.authenticatedAt, facebookExpiresAt: debug.expiresAt,
                                                 facebookDataAccessExpiresAt: debug.dataAccessExpiresAt, now: now)
            if debug.isValid, PreflightRules.judge(checked, pageID: record.pageID, requiredPermissions: settings.requiredPermissions,
                                                    policy: fresh, now: now).isFit {
                // has_lead_access needs leads_retrieval: asked only once the scopes allow it.
                let access = try await graph.leadAccess(pageID: record.pageID, userID: record.authenticatorUserID, token: pageToken)
                checked.canAccessLeads = access.canAccessLead
                checked.leadAccessFailure = access.failureReason
            }
            facts = checked
            evaluation = fresh
            verdict = PreflightRules.judge(checked, pageID: record.pageID, requiredPermissions: settings.requiredPermissions,
                                           policy: fresh, now: now)
        } catch let error as GraphError where error.voidCause != nil {
            verdict = .void(cause: error.voidCause!, detail: error.causeDetail ?? error.code, since: now)
        } catch let error as any LeadFlowError where error.disposition != .void && !(error is AppNotConfigured) {
            log(record, "unchecked", error.code)
            return result(.unchecked(reason: error.description))
        }
        let verified = { try await self.repository.recordVerified(connectionID: record.id, facebookExpiresAt: facts?.expiresAt,
                                                             dataAccessExpiresAt: facts?.dataAccessExpiresAt, now: now,
                                                             cycle: record.authenticatedAt) }

        switch verdict {
        case .void(let cause, let detail, let since):
            let opening = try await repository.openVoidPeriod(connectionID: record.id, cause: cause, detail: detail, since: since, now: now,
                                                              cycle: record.authenticatedAt)
            if opening == .reauthenticated {
                log(record, "superseded", cause.rawValue)
                return result(.superseded)
            }
            log(record, "void", cause.rawValue)
            return result(.checked(verdict), opened: opening.opened)
        case .reminderDue:
            try await verified()
            let reminder = try await repository.writeReminder(connectionID: record.id, kind: "reauthentication_due",
                                                        cycleStartedAt: record.authenticatedAt, dueAt: evaluation.reminderAt,
                                                        expiresAt: evaluation.expiresAt, now: now)
            log(record, "reminder_due", nil)
            return result(.checked(verdict), reminder: reminder, token: pageToken)
        case .healthy:
            try await verified()
            log(record, "healthy", nil)
            return result(.checked(verdict), token: pageToken)
        }
    }

    private func log(_ record: ConnectionRecord, _ state: String, _ cause: String?) {
        var metadata: Logger.Metadata = ["connection.id": "\(record.id)", "connection.label": "\(record.label)", "preflight.state": "\(state)"]
        if let cause { metadata["preflight.cause"] = "\(cause)" }
        logger.info("preflight", metadata: metadata)
    }
}

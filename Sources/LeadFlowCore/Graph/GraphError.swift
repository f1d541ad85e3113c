import Foundation

/// Why a connection went void: the words of the `void_periods.cause` column.
public enum VoidCause: String, Sendable, Equatable, CaseIterable {
    case tokenExpired = "token_expired"
    case dataAccessExpired = "data_access_expired"
    case tokenInvalidated = "token_invalidated"
    case permissionRevoked = "permission_revoked"
    case leadAccessLost = "lead_access_lost"
}

/// A failure talking to the Graph API, classified by what the pipeline must do about it
/// (`GRAPH_API.md`, "Errors").
public struct GraphError: LeadFlowError, Equatable {
    public enum Kind: String, Sendable {
        /// Graph's own error envelope.
        case api
        /// A body that is not the JSON it should be (truncated, invalid, wrong shape).
        case malformed
        /// The same `after` cursor came back twice.
        case cursorLoop = "cursor_loop"
        /// Retries ran out; `lastError` says on what.
        case exhausted
    }

    public let kind: Kind
    public let httpStatus: Int?
    /// Graph's `code`, `error_subcode`, `type` and `is_transient`, when it sent an envelope.
    public let apiCode: Int?
    public let subcode: Int?
    public let type: String?
    public let isTransient: Bool
    /// Graph's message, with any URL secrets redacted. Graph messages name no lead data.
    public let message: String
    /// What was being read, without secrets: `leads of form 2001`.
    public let context: String

    public init(kind: Kind, httpStatus: Int? = nil, apiCode: Int? = nil, subcode: Int? = nil, type: String? = nil,
                isTransient: Bool = false, message: String, context: String) {
        self.kind = kind
        self.httpStatus = httpStatus
        self.apiCode = apiCode
        self.subcode = subcode
        self.type = type
        self.isTransient = isTransient
        self.message = URLRedaction.redact(message)
        self.context = context
    }

    public var code: String {
        switch kind {
        case .api: return "graph.\(apiCode.map(String.init) ?? "http_\(httpStatus ?? 0)")" + (subcode.map { ".\($0)" } ?? "")
        default: return "graph.\(kind.rawValue)"
        }
    }

    public var description: String {
        var text = "\(code): \(context): \(message)"
        if let httpStatus { text += " (HTTP \(httpStatus))" }
        return text
    }

    /// Rate limits: application (4), user (17), page (32), custom (613), business use case (80000–80014).
    public var isRateLimit: Bool {
        guard kind == .api, let apiCode else { return httpStatus == 429 }
        return [4, 17, 32, 613].contains(apiCode) || (80000...80014).contains(apiCode) || httpStatus == 429
    }

    /// HTTP 500 "Please reduce the amount of data you're asking for": halve `limit`, retry.
    public var asksToReduceData: Bool {
        kind == .api && message.localizedCaseInsensitiveContains("reduce the amount of data")
    }

    /// The connection's cause for going void, when this error means it must.
    public var voidCause: VoidCause? {
        guard kind == .api, let apiCode else { return nil }
        switch apiCode {
        case 190:
            switch subcode {
            case 463: return .tokenExpired
            case 493: return .dataAccessExpired
            default: return .tokenInvalidated
            }
        case 102:
            return .tokenInvalidated
        case 10, 200...299:
            return .permissionRevoked
        case 100 where subcode == 33:
            // "Object does not exist, cannot be loaded due to missing permissions": the
            // Page role or lead access is gone. Not "no data".
            return .leadAccessLost
        default:
            return nil
        }
    }

    /// Subcode meanings for 190, for people reading a void period's detail.
    public var causeDetail: String? {
        guard apiCode == 190 || apiCode == 102 else { return apiCode.map { "graph error \($0)" } }
        return GraphSubcodes.meaning(subcode)
    }

    public var disposition: Disposition {
        switch kind {
        case .malformed: return .retry
        case .cursorLoop, .exhausted: return .fatal
        case .api:
            if voidCause != nil { return .void }
            if isRateLimit || isTransient || asksToReduceData { return .retry }
            if let apiCode, [1, 2].contains(apiCode) { return .retry }
            if apiCode == 368 { return .fatal } // temporarily blocked: stop this connection's run
            if apiCode == nil, let httpStatus, httpStatus >= 500 { return .retry }
            return .fatal
        }
    }

    /// Reads Graph's error envelope from a non-2xx answer; a body that is not an envelope
    /// becomes an `.api` error with the HTTP status alone.
    public static func from(status: Int, body: Data, context: String) -> GraphError {
        struct Envelope: Decodable {
            struct Inner: Decodable {
                let message: String?
                let type: String?
                let code: Int?
                let error_subcode: Int?
                let is_transient: Bool?
            }
            let error: Inner
        }
        guard let envelope = try? GraphJSON.decode(Envelope.self, from: body) else {
            return GraphError(kind: .api, httpStatus: status, message: "HTTP \(status) without an error envelope", context: context)
        }
        let inner = envelope.error
        return GraphError(kind: .api, httpStatus: status, apiCode: inner.code, subcode: inner.error_subcode, type: inner.type,
                          isTransient: inner.is_transient ?? false, message: inner.message ?? "no message", context: context)
    }
}

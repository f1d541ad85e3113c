import Foundation
import LeadFlowCore

/// Graph's error envelopes as the fake serves them. The static ones are the real payloads
/// kept in `fixtures/graph/errors/` (`GraphErrorCatalogueTests` holds the two to each
/// other), embedded here so an installed `graph-fake` or `leadflow demo` needs no source
/// tree. The envelope is Graph's documented one
/// (https://developers.facebook.com/docs/graph-api/guides/error-handling) with a fresh
/// `fbtrace_id` on every answer.
struct GraphErrorAnswer: Sendable {
    var status: Int
    var code: Int
    var subcode: Int?
    var type: String
    var message: String
    var isTransient: Bool?

    /// The envelope, with a new `fbtrace_id`.
    func body() -> Data {
        var fields = [#""message":\#(JSONText.quoted(message))"#, #""type":"\#(type)""#]
        if let isTransient { fields.append(#""is_transient":\#(isTransient)"#) }
        fields.append(#""code":\#(code)"#)
        if let subcode { fields.append(#""error_subcode":\#(subcode)"#) }
        fields.append(#""fbtrace_id":"\#(Self.traceID())""#)
        return Data(#"{"error":{\#(fields.joined(separator: ","))}}"#.utf8)
    }

    /// Graph's answer headers for an error: `WWW-Authenticate` names the OAuth error class.
    var headers: [(name: String, value: String)] {
        let kind = code == 190 || code == 102 ? "invalid_token" : "invalid_request"
        return [("Content-Type", "application/json; charset=UTF-8"),
                ("WWW-Authenticate", #"OAuth "Facebook Platform" "\#(kind)" "\#(message.replacingOccurrences(of: "\"", with: "'"))""#)]
    }

    /// Eleven characters like Graph's (`AbCdEf12345`, `H2il2t5bn4e`): only its presence matters.
    static func traceID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
        return String((0..<11).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
    }
}

enum GraphErrors {
    /// The fixtures of `fixtures/graph/errors/`, by file name (without `.json`).
    static let catalogue: [String: GraphErrorAnswer] = [
        "app_rate_limit_4": .init(status: 400, code: 4, type: "OAuthException",
                                  message: "(#4) Application request limit reached", isTransient: true),
        "app_removed_458": .init(status: 400, code: 190, subcode: 458, type: "OAuthException",
                                 message: "Error validating access token: The user has not authorized application 1234567890."),
        "custom_rate_limit_613": .init(status: 400, code: 613, type: "OAuthException",
                                       message: "(#613) Calls to this api have exceeded the rate limit."),
        "invalid_cursor_100": .init(status: 400, code: 100, type: "OAuthException", message: "(#100) The after cursor is invalid"),
        "invalid_token_190": .init(status: 400, code: 190, type: "OAuthException",
                                   message: "Invalid OAuth access token - Cannot parse access token"),
        "lead_gen_rate_limit_80005": .init(status: 400, code: 80005, subcode: 2446079, type: "OAuthException",
                                           message: "(#80005) There have been too many leadgen api calls to this Page. Wait a bit and try again. For rate limiting best practices, please visit https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
                                           isTransient: true),
        "object_missing_100_33": objectMissing(id: "1001"),
        "page_rate_limit_32": .init(status: 400, code: 32, type: "OAuthException", message: "(#32) Page request limit reached"),
        "password_changed_460": .init(status: 400, code: 190, subcode: 460, type: "OAuthException",
                                      message: "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons."),
        "permission_10": .init(status: 400, code: 10, type: "OAuthException", message: "(#10) Application does not have permission for this action"),
        "permission_200": .init(status: 400, code: 200, type: "OAuthException", message: "(#200) Requires leads_retrieval permission to manage the object"),
        "reduce_data_500": .init(status: 500, code: 1, type: "OAuthException",
                                 message: "Please reduce the amount of data you're asking for, then retry your request"),
        "service_unavailable_2": .init(status: 400, code: 2, type: "OAuthException",
                                       message: "An unexpected error has occurred. Please retry your request later.", isTransient: true),
        "session_invalid_102": .init(status: 400, code: 102, type: "OAuthException", message: "Session key invalid or no longer valid"),
        "temporarily_blocked_368": .init(status: 400, code: 368, subcode: 1390008, type: "OAuthException",
                                         message: "It looks like you were misusing this feature by going too fast. You've been temporarily blocked from using it."),
        "token_expired_463": tokenExpired(at: Date(timeIntervalSince1970: 1_604_340_000), now: Date(timeIntervalSince1970: 1_604_340_001)),
        "unknown_1": .init(status: 400, code: 1, type: "OAuthException", message: "An unknown error has occurred.", isTransient: true),
        "user_logged_out_467": .init(status: 400, code: 190, subcode: 467, type: "OAuthException",
                                     message: "Error validating access token: The user is enrolled in a blocking, logged-in checkpoint"),
        "user_rate_limit_17": .init(status: 400, code: 17, subcode: 2446079, type: "OAuthException",
                                    message: "(#17) User request limit reached", isTransient: true),
        "page_buc_rate_limit_80001": .init(status: 400, code: 80001, type: "OAuthException",
                                           message: "(#80001) There have been too many calls to this Page account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting."),
    ]

    /// `(#100) Tried accessing nonexisting field (x) on node type (Y)`: no subcode.
    static func nonexistingField(_ field: String, on node: NodeType) -> GraphErrorAnswer {
        .init(status: 400, code: 100, type: "OAuthException",
              message: "(#100) Tried accessing nonexisting field (\(field)) on node type (\(node.rawValue))")
    }

    /// Code 2500, no subcode, the unknown part of the path in the message.
    static func unknownPath(_ path: String) -> GraphErrorAnswer {
        .init(status: 400, code: 2500, type: "OAuthException", message: "Unknown path components: \(path)")
    }

    /// 100/33, naming the object asked for and the method.
    static func objectMissing(id: String, method: String = "get") -> GraphErrorAnswer {
        .init(status: 400, code: 100, subcode: 33, type: "GraphMethodException",
              message: "Unsupported \(method) request. Object with ID '\(id)' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api")
    }

    static let invalidAppSecretProof = GraphErrorAnswer(status: 400, code: 100, type: "GraphMethodException",
                                                        message: "Invalid appsecret_proof provided in the API argument")
    static let appSecretProofRequired = GraphErrorAnswer(status: 400, code: 100, type: "GraphMethodException",
                                                         message: "API calls from the server require an appsecret_proof argument")

    /// 190/463, with the two instants in Pacific time as Graph writes them
    /// ("Session has expired on Wednesday, 14-Feb-18 18:00:00 PST. The current time is …").
    static func tokenExpired(at expiry: Date, now: Date) -> GraphErrorAnswer {
        .init(status: 400, code: 190, subcode: 463, type: "OAuthException",
              message: "Error validating access token: Session has expired on \(pacific(expiry)). The current time is \(pacific(now)).")
    }

    /// 190/493: Graph's answer once the user's data access has lapsed (90 days without
    /// engaging the app). Not in Meta's docs; the payload is the one captured in public
    /// issue threads (hello.js #548).
    static let dataAccessExpired = GraphErrorAnswer(status: 400, code: 190, subcode: 493, type: "OAuthException",
                                                    message: "The access token is invalid since the user hasn't engaged the app in longer than 90 days.")

    static func invalidParameter(_ message: String) -> GraphErrorAnswer {
        .init(status: 400, code: 100, type: "OAuthException", message: "(#100) \(message)")
    }

    static func pacific(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "America/Los_Angeles") ?? TimeZone(secondsFromGMT: -8 * 3600)!
        formatter.dateFormat = "EEEE, dd-MMM-yy HH:mm:ss zzz"
        return formatter.string(from: date)
    }
}

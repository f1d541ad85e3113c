import Foundation
import LeadFlowCore

/// A libpq or server failure, naming the C function, the statement's label and SQLSTATE.
///
/// The server's message can quote the values that failed (an e-mail in a unique key, say),
/// so it is kept in `serverMessage` and shown by `debugDescription` only.
public struct PostgresError: LeadFlowError, Equatable {
    public enum Kind: String, Sendable {
        case connect, query, copy, connectionLost = "connection_lost", decode, copyAborted = "copy_aborted"
    }

    public let kind: Kind
    /// The libpq function that reported it, e.g. `PQexecParams`.
    public let function: String
    /// What the statement was for: `migration 1`, `load leads`, ….
    public let label: String?
    /// Five characters, e.g. `23505`; nil when the failure is on the client side.
    public let sqlState: String?
    /// The server's (or libpq's) own words. May quote data: debug only.
    public let serverMessage: String

    public var code: String { "postgres.\(kind.rawValue)" }

    public var disposition: Disposition {
        if kind == .connectionLost || kind == .connect { return .retry }
        guard let sqlState else { return .fatal }
        // 08: connection exception; 40001/40P01: serialisation failure, deadlock;
        // 57P01-57P03: the server is shutting down or restarting.
        if sqlState.hasPrefix("08") || ["40001", "40P01", "57P01", "57P02", "57P03"].contains(sqlState) {
            return .retry
        }
        return .fatal
    }

    public var description: String {
        var text = "\(code): \(function) failed"
        if let label { text += " (\(label))" }
        if let sqlState { text += " with SQLSTATE \(sqlState)\(Self.conditionName(sqlState).map { " (\($0))" } ?? "")" }
        if kind == .connectionLost {
            text += ": the connection to Postgres was lost (server stopped, restarted or the session terminated); "
                + "the transaction in progress was not committed, and running again redoes it"
        }
        return text
    }

    public var debugDescription: String {
        description + ": " + serverMessage
    }

    init(kind: Kind, function: String, label: String?, sqlState: String?, serverMessage: String) {
        self.kind = kind
        self.function = function
        self.label = label
        self.sqlState = sqlState
        self.serverMessage = URLRedaction.redact(serverMessage.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The names of the conditions LeadFlow meets most, so a log line says what happened.
    static func conditionName(_ state: String) -> String? {
        [
            "23502": "not_null_violation", "23503": "foreign_key_violation", "23505": "unique_violation",
            "23514": "check_violation", "22P02": "invalid_text_representation", "42P01": "undefined_table",
            "42703": "undefined_column", "42601": "syntax_error", "57014": "query_canceled",
            "57P01": "admin_shutdown", "40001": "serialization_failure", "40P01": "deadlock_detected",
            "3D000": "invalid_catalog_name", "28P01": "invalid_password", "55P03": "lock_not_available",
        ][state]
    }
}

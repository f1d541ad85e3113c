import Foundation
import LeadFlowCore

/// A Swift value that can be bound as a query parameter, in Postgres' text format.
public protocol PostgresEncodable {
    /// The parameter's text; nil binds SQL NULL.
    var postgresText: String? { get }
}

extension String: PostgresEncodable { public var postgresText: String? { self } }
extension Substring: PostgresEncodable { public var postgresText: String? { String(self) } }
extension Int: PostgresEncodable { public var postgresText: String? { String(self) } }
extension Int32: PostgresEncodable { public var postgresText: String? { String(self) } }
extension Int64: PostgresEncodable { public var postgresText: String? { String(self) } }
extension Bool: PostgresEncodable { public var postgresText: String? { self ? "t" : "f" } }
extension Double: PostgresEncodable {
    public var postgresText: String? {
        // Postgres spells the specials its own way; Swift's "inf" would be refused.
        if isNaN { return "NaN" }
        if isInfinite { return self > 0 ? "Infinity" : "-Infinity" }
        return String(self)
    }
}
extension Date: PostgresEncodable { public var postgresText: String? { UTCTime.iso8601(self) } }
extension Data: PostgresEncodable {
    /// bytea's hex format: `\x0a1b…`.
    public var postgresText: String? { "\\x" + Hex.lowercase(self) }
}
extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self?.postgresText }
}
extension Array: PostgresEncodable where Element == String {
    /// A `text[]` literal: every element quoted, so commas and braces inside are safe.
    public var postgresText: String? {
        "{" + map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}"
    }
}

import CLibPQ
import Foundation
import LeadFlowCore

/// The rows of one result, read in place from libpq's memory (text format) and decoded
/// on access. Owns the `PGresult` and clears it in `deinit`.
public final class PostgresRows {
    private let result: OpaquePointer?
    private let label: String?
    public let count: Int
    public let columnNames: [String]

    init(result: OpaquePointer, label: String?) {
        self.result = result
        self.label = label
        self.count = Int(PQntuples(result))
        self.columnNames = (0..<PQnfields(result)).map { String(cString: PQfname(result, $0)) }
    }

    init(empty: Void) {
        result = nil
        label = nil
        count = 0
        columnNames = []
    }

    deinit {
        if let result { PQclear(result) }
    }

    /// Rows touched by INSERT, UPDATE, DELETE or COPY (`PQcmdTuples`); 0 for others.
    public var affectedRows: Int {
        guard let result else { return 0 }
        return Int(String(cString: PQcmdTuples(result))) ?? 0
    }

    public subscript(row: Int) -> PostgresRow {
        precondition(row >= 0 && row < count, "row \(row) out of 0..<\(count)")
        return PostgresRow(rows: self, index: Int32(row))
    }

    /// Every row, in order.
    public var all: [PostgresRow] { (0..<count).map { self[$0] } }

    func text(row: Int32, column: Int) throws -> String? {
        guard let result, column >= 0, column < columnNames.count else {
            throw decodeError("column \(column) does not exist")
        }
        if PQgetisnull(result, row, Int32(column)) == 1 { return nil }
        let length = Int(PQgetlength(result, row, Int32(column)))
        let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, row, Int32(column)), count: length)
        return String(decoding: bytes, as: UTF8.self)
    }

    func column(named name: String) throws -> Int {
        guard let index = columnNames.firstIndex(of: name) else { throw decodeError("no column named \(name)") }
        return index
    }

    func decodeError(_ message: String) -> PostgresError {
        PostgresError(kind: .decode, function: "PQgetvalue", label: label, sqlState: nil, serverMessage: message)
    }
}

/// One row of a `PostgresRows`; valid while the rows are.
public struct PostgresRow {
    let rows: PostgresRows
    let index: Int32

    public func isNull(_ column: Int) throws -> Bool { try rows.text(row: index, column: column) == nil }

    public func string(_ column: Int) throws -> String? { try rows.text(row: index, column: column) }
    public func string(_ name: String) throws -> String? { try string(rows.column(named: name)) }

    public func int(_ column: Int) throws -> Int? { try decode(column, "an integer") { Int($0) } }
    public func int(_ name: String) throws -> Int? { try int(rows.column(named: name)) }

    public func double(_ column: Int) throws -> Double? {
        try decode(column, "a number") { text in
            switch text {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default: return Double(text)
            }
        }
    }

    public func bool(_ column: Int) throws -> Bool? {
        try decode(column, "a boolean") { $0 == "t" ? true : $0 == "f" ? false : nil }
    }
    public func bool(_ name: String) throws -> Bool? { try bool(rows.column(named: name)) }

    /// `timestamptz` text (the session's zone is UTC, date style ISO).
    public func date(_ column: Int) throws -> Date? { try decode(column, "a timestamp") { UTCTime.parse($0) } }
    public func date(_ name: String) throws -> Date? { try date(rows.column(named: name)) }

    /// `bytea` in hex format.
    public func bytes(_ column: Int) throws -> Data? {
        try decode(column, "bytea") { text in
            guard text.hasPrefix("\\x"), text.utf8.count % 2 == 0 else { return nil }
            var data = Data(capacity: (text.utf8.count - 2) / 2)
            var high: UInt8?
            for byte in text.utf8.dropFirst(2) {
                guard let nibble = hexNibble(byte) else { return nil }
                if let h = high { data.append(h << 4 | nibble); high = nil } else { high = nibble }
            }
            return data
        }
    }

    private func decode<T>(_ column: Int, _ what: String, _ convert: (String) -> T?) throws -> T? {
        guard let text = try rows.text(row: index, column: column) else { return nil }
        guard let value = convert(text) else {
            // The value itself may be personal data: name the column, not the text.
            throw rows.decodeError("column \(rows.columnNames[column]) is not \(what)")
        }
        return value
    }
}

private func hexNibble(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 48...57: return byte - 48
    case 97...102: return byte - 87
    case 65...70: return byte - 55
    default: return nil
    }
}

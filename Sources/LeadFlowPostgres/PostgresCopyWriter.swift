import Foundation
import LeadFlowCore

/// Encodes rows in COPY's text format into a buffer that `copyIn` ships in chunks.
///
/// Text format: fields separated by a tab, rows ended by a newline, NULL as `\N`, and
/// backslash, tab, newline and carriage return escaped with a backslash.
public struct PostgresCopyWriter {
    private var buffer: [UInt8] = []
    private let chunkSize: Int
    private var fieldsInRow = 0
    /// Rows written so far.
    public private(set) var rowCount = 0
    /// Where full chunks go; nil for a detached writer that only encodes.
    private let connection: PostgresConnection?
    private let label: String

    /// A detached writer: encodes into `pendingBytes` and sends nothing.
    public init() {
        self.init(connection: nil, label: "", chunkSize: .max)
    }

    init(connection: PostgresConnection?, label: String, chunkSize: Int) {
        self.connection = connection
        self.label = label
        self.chunkSize = chunkSize
        if connection != nil { buffer.reserveCapacity(chunkSize + 4096) }
    }

    /// Appends one field to the current row; nil writes SQL NULL.
    public mutating func append(_ value: String?) {
        if fieldsInRow > 0 { buffer.append(UInt8(ascii: "\t")) }
        fieldsInRow += 1
        CopyText.appendField(value, to: &buffer)
    }

    /// Appends a row already in COPY text format (without its newline), then `suffix`
    /// (more fields, tab first), and ends it: rows spooled in the load format go to the
    /// server as they are.
    public mutating func appendRaw(_ row: UnsafeRawBufferPointer, then suffix: [UInt8]) throws {
        buffer.append(contentsOf: row)
        buffer.append(contentsOf: suffix)
        try endRow()
    }

    public mutating func append(_ value: some PostgresEncodable) {
        append(value.postgresText)
    }

    /// Ends the current row, and sends the buffer once it holds a chunk.
    /// Call once per row, after its fields.
    public mutating func endRow() throws {
        buffer.append(UInt8(ascii: "\n"))
        fieldsInRow = 0
        rowCount += 1
        if buffer.count >= chunkSize { try flush() }
    }

    /// Appends a whole row.
    public mutating func appendRow(_ fields: [String?]) throws {
        for field in fields { append(field) }
        try endRow()
    }

    /// The encoded bytes not yet sent (tests read the format through this).
    public var pendingBytes: [UInt8] { buffer }

    mutating func flush() throws {
        guard let connection else { return }
        try buffer.withUnsafeBytes { try connection.putCopyData($0, label: label) }
        buffer.removeAll(keepingCapacity: true)
    }
}

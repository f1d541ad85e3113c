import Foundation

/// PostgreSQL's COPY text format, written byte by byte: fields separated by a tab, rows
/// ended by a newline, NULL as `\N`, and backslash, tab, newline and carriage return
/// escaped with a backslash (https://www.postgresql.org/docs/current/sql-copy.html, "Text Format").
public enum CopyText {
    public static func appendField(_ value: String?, to buffer: inout [UInt8]) {
        guard var value else {
            buffer.append(UInt8(ascii: "\\"))
            buffer.append(UInt8(ascii: "N"))
            return
        }
        value.withUTF8 { bytes in
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\\"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "\t"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "t"))
                case UInt8(ascii: "\n"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "r"))
                default: buffer.append(byte)
                }
            }
        }
    }

    /// The first field of a row as it was written (a lead's id is digits: no escapes).
    public static func firstField(of row: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var end = 0
        while end < row.count, row[end] != UInt8(ascii: "\t") { end += 1 }
        return UnsafeRawBufferPointer(rebasing: row[0..<end])
    }
}

/// A lead's row in the `leads` table, as the extract stage spools it and the load stage
/// copies it: one table of columns, so the column list of the COPY and the order of the
/// values written can never drift apart. The columns a load stamps on every row of a
/// window (archive, runs, times) are not here: the load appends them.
public enum LeadRow {
    public struct Column: Sendable {
        public let name: String
        let value: @Sendable (IntegrateLead, _ rawSHA256: String) -> String?
    }

    public static let columns: [Column] = [
        .init(name: "lead_id") { lead, _ in lead.leadID },
        .init(name: "instance") { lead, _ in lead.instance },
        .init(name: "connection_id") { lead, _ in String(lead.connectionID) },
        .init(name: "page_id") { lead, _ in lead.pageID },
        .init(name: "form_id") { lead, _ in lead.formID },
        .init(name: "form_name") { lead, _ in lead.formName },
        .init(name: "source_id") { lead, _ in lead.sourceID },
        .init(name: "ad_id") { lead, _ in lead.adID },
        .init(name: "adset_id") { lead, _ in lead.adsetID },
        .init(name: "campaign_id") { lead, _ in lead.campaignID },
        .init(name: "is_organic") { lead, _ in lead.isOrganic ? "t" : "f" },
        .init(name: "platform") { lead, _ in lead.platform },
        .init(name: "created_at") { lead, _ in UTCTime.iso8601(lead.createdAt) },
        .init(name: "email") { lead, _ in lead.email },
        .init(name: "first_name") { lead, _ in lead.firstName },
        .init(name: "last_name") { lead, _ in lead.lastName },
        .init(name: "company") { lead, _ in lead.company },
        .init(name: "job_title") { lead, _ in lead.jobTitle },
        .init(name: "phone") { lead, _ in lead.phone },
        .init(name: "country") { lead, _ in lead.country },
        .init(name: "state") { lead, _ in lead.state },
        .init(name: "city") { lead, _ in lead.city },
        .init(name: "postal_code") { lead, _ in lead.postalCode },
        .init(name: "consents") { lead, _ in JSONText.object(lead.consents) },
        .init(name: "answers") { lead, _ in JSONText.answers(lead.answers) },
        .init(name: "raw_sha256") { _, rawSHA256 in rawSHA256 },
    ]

    /// The columns a window's load stamps after the spooled ones, in this order.
    public static let stampedColumns = ["archive_id", "first_run_id", "last_run_id", "loaded_at", "updated_at"]

    public static let names: [String] = columns.map(\.name)

    /// Appends the lead's row, newline included.
    public static func append(_ lead: IntegrateLead, rawSHA256: String, to buffer: inout [UInt8]) {
        for (index, column) in columns.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: "\t")) }
            CopyText.appendField(column.value(lead, rawSHA256), to: &buffer)
        }
        buffer.append(UInt8(ascii: "\n"))
    }
}

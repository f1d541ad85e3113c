import LeadFlowPostgres
import Testing

/// COPY's text format, without a server.
@Suite struct PostgresCopyWriterTests {
    @Test func escapesTheFourSpecialBytesAndWritesNull() async throws {
        var writer = PostgresCopyWriter()
        try writer.appendRow(["a\tb", "line1\nline2\r", #"back\slash"#, nil, "", "Zoë"])
        #expect(String(decoding: writer.pendingBytes, as: UTF8.self) == "a\\tb\tline1\\nline2\\r\tback\\\\slash\t\\N\t\tZoë\n")
        #expect(writer.rowCount == 1)
    }

    @Test func encodesTypedValues() async throws {
        var writer = PostgresCopyWriter()
        writer.append(42)
        writer.append(true)
        writer.append(Optional<String>.none)
        try writer.endRow()
        #expect(String(decoding: writer.pendingBytes, as: UTF8.self) == "42\tt\t\\N\n")
    }
}

/// A page of a form's leads, parsed once from its bytes where it enters: the leads as typed
/// values, the elements of `data` that are no lead Graph would send (each with the reason,
/// so it becomes a rejection row and the rest of the page goes on), and the paging.
///
/// Written by hand over the bytes rather than with `JSONDecoder` (which costs more than the
/// rest of a lead's path together, and fails a whole page for one odd lead): it checks what
/// the decoder checked — the JSON grammar, UTF-8, a nesting bound — and reads only the keys
/// of a lead LeadFlow uses. A syntax error fails the page (Graph's body was cut or garbled:
/// the request is retried); a lead of the wrong shape fails only that lead.
public struct GraphLeadPage: Sendable {
    public var leads: [GraphLead]
    public var malformed: [Malformed]
    public var paging: GraphPaging?

    /// An element of `data` that is valid JSON but not a lead: its id when it had a usable
    /// one, and a reason code (never its values).
    public struct Malformed: Sendable, Equatable {
        public let leadID: String?
        public let createdTime: String?
        public let reason: String
        /// The element's bytes as Graph sent them (hashed for its rejection row, never shown).
        public var raw: [UInt8] = []
    }

    /// Why a page could not be read at all.
    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        public let offset: Int
        public let message: String
        public var description: String { "not a Graph page at byte \(offset): \(message)" }
    }

    /// Graph's deepest documents (a lead's `field_data` values) are 5 levels deep.
    public static let maximumDepth = GraphJSON.maximumDepth

    /// The same over bytes in place (`parse(_: Data)`, in GraphLeadPage+Data.swift, reads a
    /// body as it arrived with no copy of a 50 MB page).
    static func parse(buffer: UnsafeRawBufferPointer) throws -> GraphLeadPage {
        var parser = Parser(buffer)
        let page = try parser.page()
        parser.skipSpace()
        guard parser.atEnd else { throw parser.error("text after the page") }
        return page
    }

    public static func parse(_ bytes: [UInt8]) throws -> GraphLeadPage {
        try bytes.withUnsafeBytes { buffer in
            var parser = Parser(buffer)
            let page = try parser.page()
            parser.skipSpace()
            guard parser.atEnd else { throw parser.error("text after the page") }
            return page
        }
    }
}

extension GraphPaging {
    public init(after: String?, next: String?) {
        self.init(cursors: Cursors(before: nil, after: after), next: next)
    }
}

private struct Parser {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    var depth = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { index >= bytes.count }

    func error(_ message: String) -> GraphLeadPage.SyntaxError { .init(offset: index, message: message) }

    mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// The next byte after whitespace, not consumed.
    mutating func peek() throws -> UInt8 {
        skipSpace()
        guard index < bytes.count else { throw error("the body ends early") }
        return bytes[index]
    }

    mutating func expect(_ byte: UInt8) throws {
        guard try peek() == byte else { throw error("expected '\(Character(Unicode.Scalar(byte)))'") }
        index += 1
    }

    mutating func enter() throws {
        depth += 1
        guard depth <= GraphLeadPage.maximumDepth else { throw error("nested deeper than \(GraphLeadPage.maximumDepth)") }
    }

    // MARK: The page

    mutating func page() throws -> GraphLeadPage {
        var page = GraphLeadPage(leads: [], malformed: [], paging: nil)
        var sawData = false
        try object { parser, key in
            switch key {
            case "data":
                sawData = true
                guard try parser.peek() == UInt8(ascii: "[") else { throw parser.error("data is not a list") }
                try parser.array { parser in
                    let start = parser.index
                    guard try parser.peek() == UInt8(ascii: "{") else {
                        try parser.skipValue()
                        var malformed = GraphLeadPage.Malformed(leadID: nil, createdTime: nil, reason: "malformed_lead")
                        malformed.raw = parser.raw(from: start)
                        page.malformed.append(malformed)
                        return
                    }
                    switch try parser.lead() {
                    case .lead(let lead):
                        page.leads.append(lead)
                    case .malformed(var malformed):
                        malformed.raw = parser.raw(from: start)
                        page.malformed.append(malformed)
                    }
                }
            case "paging":
                page.paging = try parser.paging()
            default:
                try parser.skipValue()
            }
        }
        guard sawData else { throw error("no data list") }
        return page
    }

    func raw(from start: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
    }

    mutating func paging() throws -> GraphPaging? {
        guard try peek() == UInt8(ascii: "{") else {
            try skipValue()
            return nil
        }
        var after: String?
        var next: String?
        try object { parser, key in
            switch key {
            case "cursors":
                guard try parser.peek() == UInt8(ascii: "{") else { return try parser.skipValue() }
                try parser.object { parser, key in
                    if key == "after" { after = try parser.optionalString() } else { try parser.skipValue() }
                }
            case "next":
                next = try parser.optionalString()
            default:
                try parser.skipValue()
            }
        }
        return GraphPaging(after: after, next: next)
    }

    // MARK: One lead

    enum LeadOutcome {
        case lead(GraphLead)
        case malformed(GraphLeadPage.Malformed)
    }

    /// A lead object; a key of the wrong type makes it malformed (the object is still read
    /// to its end, so the page goes on).
    mutating func lead() throws -> LeadOutcome {
        var strings: [String: String] = [:]
        var fieldData: [GraphLead.Field]?
        var consents: [GraphLead.Consent]?
        var isOrganic: Bool?
        var wrong: String?
        try object { parser, key in
            switch key {
            case "id", "created_time", "ad_id", "ad_name", "adset_id", "adset_name", "campaign_id", "campaign_name", "form_id",
                 "platform", "partner_name":
                switch try parser.peek() {
                case UInt8(ascii: "\""): strings[key] = try parser.string()
                case UInt8(ascii: "n"): try parser.skipValue()
                default:
                    try parser.skipValue()
                    wrong = wrong ?? key
                }
            case "is_organic":
                switch try parser.peek() {
                case UInt8(ascii: "t"), UInt8(ascii: "f"): isOrganic = try parser.bool()
                case UInt8(ascii: "n"): try parser.skipValue()
                default:
                    try parser.skipValue()
                    wrong = wrong ?? key
                }
            case "field_data":
                fieldData = try parser.fieldData()
                if fieldData == nil { wrong = wrong ?? key }
            case "custom_disclaimer_responses":
                consents = try parser.consents()
                if consents == nil { wrong = wrong ?? key }
            default:
                try parser.skipValue()
            }
        }
        let id = strings["id"].flatMap { $0.isEmpty ? nil : $0 }
        if let wrong { return .malformed(.init(leadID: id, createdTime: strings["created_time"], reason: "malformed_\(wrong)")) }
        guard let id else { return .malformed(.init(leadID: nil, createdTime: strings["created_time"], reason: "missing_id")) }
        guard let created = strings["created_time"] else { return .malformed(.init(leadID: id, createdTime: nil, reason: "missing_created_time")) }
        return .lead(GraphLead(id: id, createdTime: created, fieldData: fieldData ?? [], adID: strings["ad_id"], adName: strings["ad_name"],
                               adsetID: strings["adset_id"], adsetName: strings["adset_name"], campaignID: strings["campaign_id"],
                               campaignName: strings["campaign_name"], formID: strings["form_id"], isOrganic: isOrganic,
                               platform: strings["platform"], customDisclaimerResponses: consents, partnerName: strings["partner_name"]))
    }

    /// `[{"name","values":[…]}]`; nil (the value skipped) when its shape is not that.
    mutating func fieldData() throws -> [GraphLead.Field]? {
        guard try peek() == UInt8(ascii: "[") else {
            try skipValue()
            return nil
        }
        var fields: [GraphLead.Field] = []
        var ok = true
        try array { parser in
            guard ok, try parser.peek() == UInt8(ascii: "{") else {
                ok = false
                return try parser.skipValue()
            }
            var name: String?
            var values: [String]? = []
            try parser.object { parser, key in
                switch key {
                case "name":
                    if try parser.peek() == UInt8(ascii: "\"") { name = try parser.string() } else { try parser.skipValue(); ok = false }
                case "values":
                    values = try parser.strings()
                    if values == nil { ok = false }
                default:
                    try parser.skipValue()
                }
            }
            if let name, let values { fields.append(.init(name: name, values: values)) } else { ok = false }
        }
        return ok ? fields : nil
    }

    /// `[{"checkbox_key","is_checked"}]`, `is_checked` a string as Graph sends it.
    mutating func consents() throws -> [GraphLead.Consent]? {
        guard try peek() == UInt8(ascii: "[") else {
            if try peek() == UInt8(ascii: "n") { try skipValue(); return [] }
            try skipValue()
            return nil
        }
        var consents: [GraphLead.Consent] = []
        var ok = true
        try array { parser in
            guard ok, try parser.peek() == UInt8(ascii: "{") else {
                ok = false
                return try parser.skipValue()
            }
            var key: String?
            var checked: String?
            try parser.object { parser, name in
                switch name {
                case "checkbox_key", "is_checked":
                    guard try parser.peek() == UInt8(ascii: "\"") else { try parser.skipValue(); ok = false; return }
                    let value = try parser.string()
                    if name == "checkbox_key" { key = value } else { checked = value }
                default:
                    try parser.skipValue()
                }
            }
            if let key, let checked { consents.append(.init(checkboxKey: key, isChecked: checked)) } else { ok = false }
        }
        return ok ? consents : nil
    }

    /// A list of strings; nil (skipped) when it is anything else.
    mutating func strings() throws -> [String]? {
        guard try peek() == UInt8(ascii: "[") else {
            try skipValue()
            return nil
        }
        var values: [String] = []
        var ok = true
        try array { parser in
            if try parser.peek() == UInt8(ascii: "\"") { values.append(try parser.string()) } else { try parser.skipValue(); ok = false }
        }
        return ok ? values : nil
    }

    mutating func optionalString() throws -> String? {
        if try peek() == UInt8(ascii: "\"") { return try string() }
        try skipValue()
        return nil
    }

    // MARK: Grammar

    /// Calls `member` with each key, positioned at its value, which it must consume.
    mutating func object(_ member: (inout Parser, String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        try enter()
        defer { depth -= 1 }
        if try peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            guard try peek() == UInt8(ascii: "\"") else { throw error("expected a key") }
            let key = try string()
            try expect(UInt8(ascii: ":"))
            try member(&self, key)
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return
            default: throw error("expected ',' or '}'")
            }
        }
    }

    /// Calls `element` positioned at each element, which it must consume.
    mutating func array(_ element: (inout Parser) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        try enter()
        defer { depth -= 1 }
        if try peek() == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            try element(&self)
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return
            default: throw error("expected ',' or ']'")
            }
        }
    }

    mutating func skipValue() throws {
        switch try peek() {
        case UInt8(ascii: "{"): try object { parser, _ in try parser.skipValue() }
        case UInt8(ascii: "["): try array { parser in try parser.skipValue() }
        case UInt8(ascii: "\""): _ = try string()
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try bool()
        case UInt8(ascii: "n"): try literal("null")
        default: try number()
        }
    }

    mutating func bool() throws -> Bool {
        if try peek() == UInt8(ascii: "t") {
            try literal("true")
            return true
        }
        try literal("false")
        return false
    }

    mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("the body ends early") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw error("expected \(word)") }
        index += count
    }

    /// `-? digits (. digits)? ([eE] [+-]? digits)?`
    mutating func number() throws {
        let start = index
        func digits() -> Int {
            let from = index
            while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
            return index - from
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard digits() > 0 else { index = start; throw error("expected a value") }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw error("a number without digits after '.'") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw error("a number without an exponent") }
        }
    }

    /// A string literal: escapes decoded (a lone surrogate becomes U+FFFD), UTF-8 checked.
    mutating func string() throws -> String {
        try expect(UInt8(ascii: "\""))
        let start = index
        var ascii = true
        // Fast path: no escape before the closing quote.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let run = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                // ASCII (most of a lead) is valid UTF-8 as it stands: no second look.
                let text = ascii ? String(decoding: run, as: UTF8.self) : String(validating: run, as: UTF8.self)
                guard let text else { throw error("a string that is not UTF-8") }
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw error("a control character inside a string") }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        // Escapes. The decoded text is never longer than the literal (an escape is at least as
        // long as what it stands for), so the string is made in one allocation of the
        // literal's size: no buffer doubling and copying for a 500 kB answer, which left
        // the heap fragmented at several times the page's size.
        var end = index
        while end < bytes.count, bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
        guard end < bytes.count else { throw error("the body ends inside a string") }
        let plain = index - start
        return try String(unsafeUninitializedCapacity: end - start) { out in
            var count = 0
            func append(_ byte: UInt8) { out[count] = byte; count += 1 }
            for offset in 0..<plain { append(bytes[start + offset]) }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard Self.isUTF8(UnsafeBufferPointer(rebasing: out[..<count])) else { throw error("a string that is not UTF-8") }
                    return count
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { throw error("the body ends early") }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): append(escape)
                    case UInt8(ascii: "b"): append(0x08)
                    case UInt8(ascii: "f"): append(0x0C)
                    case UInt8(ascii: "n"): append(0x0A)
                    case UInt8(ascii: "r"): append(0x0D)
                    case UInt8(ascii: "t"): append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            // A high surrogate: a low one must follow to make one character.
                            if index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                                let save = index
                                index += 2
                                let low = try hex4()
                                if (0xDC00...0xDFFF).contains(low) {
                                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                                } else {
                                    index = save
                                    scalar = 0xFFFD
                                }
                            } else {
                                scalar = 0xFFFD
                            }
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            scalar = 0xFFFD
                        }
                        // At most 4 bytes from at least 6 of escape: within the capacity.
                        for unit in UTF8.encode(Unicode.Scalar(scalar)!)! { append(unit) }
                    default:
                        throw error("an unknown escape")
                    }
                default:
                    guard byte >= 0x20 else { throw error("a control character inside a string") }
                    append(byte)
                }
            }
            throw error("the body ends inside a string")
        }
    }

    /// Whether the bytes are well-formed UTF-8.
    static func isUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("the body ends early") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            index += 1
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw error("a bad \\u escape")
            }
            value = value << 4 | digit
        }
        return value
    }
}

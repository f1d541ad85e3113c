/// Small, exact JSON writing for the hot path (every lead's hash, consents and answers):
/// Foundation's JSONEncoder costs tens of microseconds a call, this costs well under one.
public enum JSONText {
    /// A JSON string literal, escaped per RFC 8259.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `{"a":true,…}` with keys sorted.
    public static func object(_ values: [String: Bool]) -> String {
        "{" + values.keys.sorted().map { quoted($0) + ":" + (values[$0]! ? "true" : "false") }.joined(separator: ",") + "}"
    }

    /// `{"a":["x","y"],…}` with keys sorted.
    public static func object(_ values: [String: [String]]) -> String {
        "{" + values.keys.sorted().map { quoted($0) + ":[" + values[$0]!.map(quoted).joined(separator: ",") + "]" }.joined(separator: ",") + "}"
    }

    /// A lead's `answers`: `{"question":["a","b"],…}` with keys sorted, and a question
    /// answered with an empty list as `null` (asked, not answered).
    public static func answers(_ values: [String: [String]]) -> String {
        "{" + values.keys.sorted().map { key in
            let answer = values[key]!
            return quoted(key) + ":" + (answer.isEmpty ? "null" : "[" + answer.map(quoted).joined(separator: ",") + "]")
        }.joined(separator: ",") + "}"
    }
}

extension JSONText {
    /// `quoted`, written as UTF-8 bytes: the same escapes, so the same bytes as
    /// `Array(quoted(text).utf8)` (the hashes of leads loaded before stay the same).
    public static func appendQuoted(_ text: String, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "\n"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "r"))
                case UInt8(ascii: "\t"): buffer.append(UInt8(ascii: "\\")); buffer.append(UInt8(ascii: "t"))
                case 0..<0x20:
                    buffer.append(contentsOf: Array("\\u00".utf8))
                    buffer.append(hexDigits[Int(byte >> 4)])
                    buffer.append(hexDigits[Int(byte & 0x0F)])
                default: buffer.append(byte)
                }
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}

extension GraphLead {
    /// The canonical text's bytes (`canonicalJSON`), written straight into a buffer: what the
    /// extract stage hashes for each lead, without building a String.
    public func appendCanonicalJSON(to buffer: inout [UInt8]) {
        func key(_ name: StaticString) {
            buffer.append(UInt8(ascii: "\""))
            buffer.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            buffer.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
        }
        buffer.append(UInt8(ascii: "{"))
        key("id"); JSONText.appendQuoted(id, to: &buffer)
        buffer.append(UInt8(ascii: ",")); key("created_time"); JSONText.appendQuoted(createdTime, to: &buffer)
        buffer.append(UInt8(ascii: ",")); key("field_data"); buffer.append(UInt8(ascii: "["))
        for (index, field) in fieldData.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            buffer.append(UInt8(ascii: "{")); key("name"); JSONText.appendQuoted(field.name, to: &buffer)
            buffer.append(UInt8(ascii: ",")); key("values"); buffer.append(UInt8(ascii: "["))
            for (position, value) in field.values.enumerated() {
                if position > 0 { buffer.append(UInt8(ascii: ",")) }
                JSONText.appendQuoted(value, to: &buffer)
            }
            buffer.append(contentsOf: [UInt8(ascii: "]"), UInt8(ascii: "}")])
        }
        buffer.append(UInt8(ascii: "]"))
        let optional: [(StaticString, String?)] = [("ad_id", adID), ("ad_name", adName), ("adset_id", adsetID), ("adset_name", adsetName),
                                                   ("campaign_id", campaignID), ("campaign_name", campaignName), ("form_id", formID),
                                                   ("platform", platform), ("partner_name", partnerName)]
        for (name, value) in optional {
            if let value {
                buffer.append(UInt8(ascii: ",")); key(name); JSONText.appendQuoted(value, to: &buffer)
            }
        }
        if let isOrganic {
            buffer.append(UInt8(ascii: ",")); key("is_organic")
            buffer.append(contentsOf: Array((isOrganic ? "true" : "false").utf8))
        }
        if let consents = customDisclaimerResponses {
            buffer.append(UInt8(ascii: ",")); key("custom_disclaimer_responses"); buffer.append(UInt8(ascii: "["))
            for (index, consent) in consents.enumerated() {
                if index > 0 { buffer.append(UInt8(ascii: ",")) }
                buffer.append(UInt8(ascii: "{")); key("checkbox_key"); JSONText.appendQuoted(consent.checkboxKey, to: &buffer)
                buffer.append(UInt8(ascii: ",")); key("is_checked"); JSONText.appendQuoted(consent.isChecked, to: &buffer)
                buffer.append(UInt8(ascii: "}"))
            }
            buffer.append(UInt8(ascii: "]"))
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// One canonical text of the lead (fixed field order, absent fields left out): what its
    /// `raw_sha256` is computed over, so the same lead always hashes the same.
    public var canonicalJSON: String {
        var parts = ["\"id\":" + JSONText.quoted(id), "\"created_time\":" + JSONText.quoted(createdTime)]
        parts.append("\"field_data\":[" + fieldData.map {
            "{\"name\":" + JSONText.quoted($0.name) + ",\"values\":[" + $0.values.map(JSONText.quoted).joined(separator: ",") + "]}"
        }.joined(separator: ",") + "]")
        let optional: [(String, String?)] = [("ad_id", adID), ("ad_name", adName), ("adset_id", adsetID), ("adset_name", adsetName),
                                             ("campaign_id", campaignID), ("campaign_name", campaignName), ("form_id", formID),
                                             ("platform", platform), ("partner_name", partnerName)]
        for (key, value) in optional { if let value { parts.append("\"\(key)\":" + JSONText.quoted(value)) } }
        if let isOrganic { parts.append("\"is_organic\":\(isOrganic)") }
        if let consents = customDisclaimerResponses {
            parts.append("\"custom_disclaimer_responses\":[" + consents.map {
                "{\"checkbox_key\":" + JSONText.quoted($0.checkboxKey) + ",\"is_checked\":" + JSONText.quoted($0.isChecked) + "}"
            }.joined(separator: ",") + "]")
        }
        return "{" + parts.joined(separator: ",") + "}"
    }
}

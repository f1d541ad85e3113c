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

extension GraphLead {
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

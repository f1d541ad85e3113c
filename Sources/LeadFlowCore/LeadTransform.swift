import Foundation

/// A lead in the Integrate lead schema v1 (the `leads` table, docs/schema.md "The leads table"),
/// before the load stamps runs, archive and hashes on it.
public struct IntegrateLead: Sendable, Equatable {
    public var leadID: String
    public var instance: String
    public var connectionID: Int64
    public var pageID: String
    public var formID: String
    public var formName: String?
    public var sourceID: String?
    public var adID: String?
    public var adsetID: String?
    public var campaignID: String?
    public var isOrganic: Bool
    public var platform: String?
    public var createdAt: Date
    public var email: String?
    public var firstName: String?
    public var lastName: String?
    public var company: String?
    public var jobTitle: String?
    public var phone: String?
    public var country: String?
    public var state: String?
    public var city: String?
    public var postalCode: String?
    /// Checkbox key → checked.
    public var consents: [String: Bool]
    /// Question key (as Facebook sent it, even the full question text) → values.
    public var answers: [String: [String]]
}

/// A lead that cannot be made valid: reason codes only, never its data.
public struct LeadRejection: Sendable, Equatable {
    public var leadID: String?
    public var formID: String
    public var createdAt: Date?
    public var reasons: [String]

    public init(leadID: String?, formID: String, createdAt: Date?, reasons: [String]) {
        self.leadID = leadID
        self.formID = formID
        self.createdAt = createdAt
        self.reasons = reasons
    }
}

/// Where a lead came from, for the fields Graph's lead object does not carry.
public struct LeadContext: Sendable, Equatable {
    public var instance: String
    public var connectionID: Int64
    public var pageID: String
    public var formID: String
    public var formName: String?

    public init(instance: String, connectionID: Int64, pageID: String, formID: String, formName: String?) {
        self.instance = instance
        self.connectionID = connectionID
        self.pageID = pageID
        self.formID = formID
        self.formName = formName
    }
}

/// Graph lead → Integrate lead, by the pipeline's mapping. Pure: same input, same output.
public struct LeadTransformer: Sendable {
    /// Facebook's standard question keys and the fields they feed.
    public static let defaultFieldKeys: [String: LeadField] = [
        "email": .email, "work_email": .email, "full_name": .fullName, "first_name": .firstName, "last_name": .lastName,
        "phone_number": .phone, "work_phone_number": .phone, "company_name": .company, "job_title": .jobTitle,
        "country": .country, "state": .state, "province": .state, "city": .city, "zip_code": .postalCode, "post_code": .postalCode,
    ]

    let pipeline: Pipeline
    let fieldKeys: [String: LeadField]

    public init(pipeline: Pipeline) {
        self.pipeline = pipeline
        fieldKeys = Self.defaultFieldKeys.merging(pipeline.fieldMapping) { $1 }
    }

    public enum Outcome: Sendable, Equatable {
        case lead(IntegrateLead)
        case rejected(LeadRejection)
    }

    public func transform(_ raw: GraphLead, context: LeadContext) -> Outcome {
        var reasons: [String] = []
        let idIsValid = !raw.id.isEmpty && raw.id.allSatisfy(\.isASCII) && raw.id.allSatisfy(\.isNumber)
        if !idIsValid { reasons.append("id_invalid") }
        let created = raw.createdAt
        if created == nil { reasons.append("created_time_invalid") }

        var values: [LeadField: String] = [:]
        var answers: [String: [String]] = [:]
        for field in raw.fieldData {
            // Postgres text cannot hold U+0000 (people paste it): it goes, the rest stays.
            let name = Text.withoutNUL(field.name)
            let given = field.values.map(Text.withoutNUL)
            let mapped = fieldKeys[name] ?? .answers
            let first = given.lazy.map(Text.trimmed).first { !$0.isEmpty }
            switch mapped {
            case .ignore:
                continue
            case .answers:
                // A question answered twice keeps both answers.
                answers[name, default: []] += given
            default:
                // The first key that gives a field a value wins (email before work_email, in form order).
                if values[mapped] == nil, let first { values[mapped] = first }
            }
        }

        var email: String?
        if let given = values[.email] {
            let normalised = given.lowercased()
            if Self.isEmail(normalised) {
                email = normalised
            } else {
                reasons.append("email_invalid")
            }
        }
        let country = values[.country].flatMap(Countries.alpha2)
        if values[.country] != nil, country == nil { answers["country"] = [values[.country]!] }
        let phone = values[.phone].flatMap { Phones.normalise($0, country: country) }
        if email == nil, phone == nil { reasons.append("no_contact") }

        var first = values[.firstName]
        var last = values[.lastName]
        if first == nil, last == nil, let full = values[.fullName] {
            let parts = full.split(separator: " ", maxSplits: 1).map(String.init)
            first = parts.first
            last = parts.count > 1 ? parts[1] : nil
        }

        // Only reasons that make the lead unusable reject it; a bad e-mail with a phone still loads.
        let fatal = reasons.filter { $0 != "email_invalid" }
        guard fatal.isEmpty, let created else {
            return .rejected(LeadRejection(leadID: idIsValid ? raw.id : nil, formID: context.formID, createdAt: created, reasons: reasons))
        }
        let organic = raw.isOrganic ?? (raw.adID == nil)
        let clean = { (text: String?) in text.map(Text.withoutNUL) }
        return .lead(IntegrateLead(
            leadID: raw.id, instance: context.instance, connectionID: context.connectionID, pageID: context.pageID,
            formID: context.formID, formName: clean(context.formName),
            sourceID: pipeline.source(formID: context.formID, formName: context.formName ?? "", pageID: context.pageID),
            adID: organic ? nil : clean(raw.adID), adsetID: organic ? nil : clean(raw.adsetID), campaignID: organic ? nil : clean(raw.campaignID),
            isOrganic: organic, platform: clean(raw.platform), createdAt: created, email: email, firstName: first, lastName: last,
            company: values[.company], jobTitle: values[.jobTitle], phone: phone, country: country, state: values[.state],
            city: values[.city], postalCode: values[.postalCode],
            consents: Dictionary((raw.customDisclaimerResponses ?? []).map { (Text.withoutNUL($0.checkboxKey), ["1", "true"].contains($0.isChecked.lowercased())) },
                                 uniquingKeysWith: { _, last in last }),
            answers: answers))
    }

    /// Local part, one @, a dotted domain, no spaces: what the `leads.email` check accepts
    /// (`^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$`). Read by unicode scalars, once.
    static func isEmail(_ text: String) -> Bool {
        var at: Int?
        var lastDot: Int?
        var count = 0
        for scalar in text.unicodeScalars {
            if scalar.properties.isWhitespace { return false }
            if scalar == "@" {
                guard at == nil, count > 0 else { return false }
                at = count
            } else if scalar == ".", at != nil {
                // Labels of the domain: none empty.
                if count == (lastDot ?? at!) + 1 { return false }
                lastDot = count
            }
            count += 1
        }
        guard let lastDot, count > lastDot + 1 else { return false }
        return true
    }
}

/// Text as Postgres can hold it.
public enum Text {
    /// The text without whitespace or newlines at either end (Unicode's White_Space, as
    /// Foundation's `.whitespacesAndNewlines`); unchanged, and not copied, when it has none.
    /// Foundation's trimming went through NSString and cost more than the rest of a lead's
    /// transform.
    public static func trimmed(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.first, let last = scalars.last else { return text }
        if !isSpace(first) && !isSpace(last) { return text }
        var start = scalars.startIndex, end = scalars.endIndex
        while start < end, isSpace(scalars[start]) { start = scalars.index(after: start) }
        while end > start, isSpace(scalars[scalars.index(before: end)]) { end = scalars.index(before: end) }
        return String(scalars[start..<end])
    }

    /// White_Space, and the zero-width space Foundation's set holds too (pasted often).
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || scalar == "\u{200B}"
    }

    /// The text without U+0000, which no Postgres text or jsonb value can hold; unchanged
    /// (and not copied) when it has none.
    public static func withoutNUL(_ text: String) -> String {
        guard text.utf8.contains(0) else { return text }
        return String(text.unicodeScalars.filter { $0 != "\u{0}" }.map(Character.init))
    }
}

/// Country names and codes → ISO 3166-1 alpha-2 (the names Facebook forms produce).
public enum Countries {
    static let names: [String: String] = [
        "united states": "US", "united states of america": "US", "usa": "US", "us": "US", "canada": "CA",
        "united kingdom": "GB", "uk": "GB", "great britain": "GB", "england": "GB", "france": "FR", "germany": "DE",
        "deutschland": "DE", "japan": "JP", "日本": "JP", "spain": "ES", "españa": "ES", "italy": "IT", "italia": "IT",
        "netherlands": "NL", "belgium": "BE", "switzerland": "CH", "austria": "AT", "ireland": "IE", "australia": "AU",
        "new zealand": "NZ", "india": "IN", "brazil": "BR", "brasil": "BR", "mexico": "MX", "méxico": "MX",
        "sweden": "SE", "norway": "NO", "denmark": "DK", "finland": "FI", "poland": "PL", "portugal": "PT",
        "singapore": "SG", "south africa": "ZA", "israel": "IL", "china": "CN", "south korea": "KR", "korea": "KR",
    ]
    static let codes: Set<String> = Set(names.values).union(["LU", "GR", "CZ", "HU", "RO", "TR", "AE", "SA", "AR", "CL", "CO", "PE", "PH", "TH", "MY", "ID", "VN", "HK", "TW", "NG", "KE", "EG", "UA"])

    public static func alpha2(_ text: String) -> String? {
        let trimmed = Text.trimmed(text)
        if trimmed.count == 2, codes.contains(trimmed.uppercased()) { return trimmed.uppercased() }
        return names[trimmed.lowercased()]
    }
}

/// Phone numbers → E.164 where the country allows, else as given (trimmed).
public enum Phones {
    /// Country calling codes, and whether the national form starts with a trunk 0 to drop.
    static let calling: [String: (code: String, trunkZero: Bool)] = [
        "US": ("1", false), "CA": ("1", false), "GB": ("44", true), "FR": ("33", true), "DE": ("49", true), "JP": ("81", true),
        "ES": ("34", false), "IT": ("39", false), "NL": ("31", true), "BE": ("32", true), "CH": ("41", true), "AT": ("43", true),
        "IE": ("353", true), "AU": ("61", true), "NZ": ("64", true), "IN": ("91", true), "BR": ("55", true), "MX": ("52", false),
        "SE": ("46", true), "NO": ("47", false), "DK": ("45", false), "FI": ("358", true), "PL": ("48", false), "PT": ("351", false),
    ]

    public static func normalise(_ text: String, country: String?) -> String? {
        let trimmed = Text.trimmed(text)
        guard !trimmed.isEmpty else { return nil }
        let digits = trimmed.filter { $0.isASCII && $0.isNumber }
        guard digits.count >= 6 else { return nil }
        if trimmed.hasPrefix("+") {
            return (8...15).contains(digits.count) ? "+" + digits : trimmed
        }
        if trimmed.hasPrefix("00"), (10...17).contains(digits.count) {
            return "+" + digits.dropFirst(2)
        }
        guard let country, let rule = calling[country] else { return trimmed }
        var national = Substring(digits)
        if rule.trunkZero, national.hasPrefix("0") { national = national.dropFirst() }
        if !rule.trunkZero, rule.code == "1", national.count == 11, national.hasPrefix("1") { national = national.dropFirst() }
        let e164 = "+" + rule.code + national
        return (8...16).contains(e164.count) ? e164 : trimmed
    }
}

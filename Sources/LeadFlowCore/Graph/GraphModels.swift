import Foundation

/// `paging` of every Graph list. The end is reached when `next` is absent, never because
/// a page was short (privacy filtering makes short pages mid-stream).
public struct GraphPaging: Decodable, Sendable, Equatable {
    public struct Cursors: Decodable, Sendable, Equatable {
        public let before: String?
        public let after: String?
    }
    public let cursors: Cursors?
    /// Carries the access token in its query string: only its presence is used.
    public let next: String?

    public var hasNext: Bool { next != nil }
}

/// One page of a Graph list.
public struct GraphList<Item: Decodable & Sendable>: Decodable, Sendable {
    public let data: [Item]
    public let paging: GraphPaging?
}

/// A lead form of a Page, with the three counters snapshotted on every run.
public struct GraphForm: Decodable, Sendable, Equatable {
    public let id: String
    public let name: String
    public let status: String
    public let locale: String?
    public let createdTime: String?
    public let leadsCount: Int?
    public let organicLeadsCount: Int?
    public let expiredLeadsCount: Int?

    enum CodingKeys: String, CodingKey {
        case id, name, status, locale
        case createdTime = "created_time", leadsCount = "leads_count"
        case organicLeadsCount = "organic_leads_count", expiredLeadsCount = "expired_leads_count"
    }

    public init(id: String, name: String, status: String, locale: String? = nil, createdTime: String? = nil,
                leadsCount: Int? = nil, organicLeadsCount: Int? = nil, expiredLeadsCount: Int? = nil) {
        self.id = id
        self.name = name
        self.status = status
        self.locale = locale
        self.createdTime = createdTime
        self.leadsCount = leadsCount
        self.organicLeadsCount = organicLeadsCount
        self.expiredLeadsCount = expiredLeadsCount
    }
}

/// A lead as Graph returns it. Ad fields are absent for organic leads and when the
/// token's user cannot advertise on the ad account.
public struct GraphLead: Codable, Sendable, Equatable {
    public struct Field: Codable, Sendable, Equatable {
        /// The question key: a standard key (`email`) or, for custom questions, any text.
        public let name: String
        /// Always an array of strings, possibly empty or with several entries.
        public let values: [String]

        public init(name: String, values: [String]) {
            self.name = name
            self.values = values
        }
    }

    public struct Consent: Codable, Sendable, Equatable {
        public let checkboxKey: String
        /// A string ("1", "0", "true"), not a bool.
        public let isChecked: String

        enum CodingKeys: String, CodingKey { case checkboxKey = "checkbox_key", isChecked = "is_checked" }

        public init(checkboxKey: String, isChecked: String) {
            self.checkboxKey = checkboxKey
            self.isChecked = isChecked
        }
    }

    public let id: String
    /// `2026-11-01T12:34:56+0000`: no colon in the offset.
    public let createdTime: String
    public let fieldData: [Field]
    public let adID: String?
    public let adName: String?
    public let adsetID: String?
    public let adsetName: String?
    public let campaignID: String?
    public let campaignName: String?
    public let formID: String?
    public let isOrganic: Bool?
    public let platform: String?
    public let customDisclaimerResponses: [Consent]?
    public let partnerName: String?

    enum CodingKeys: String, CodingKey {
        case id, platform
        case createdTime = "created_time", fieldData = "field_data", adID = "ad_id", adName = "ad_name"
        case adsetID = "adset_id", adsetName = "adset_name", campaignID = "campaign_id", campaignName = "campaign_name"
        case formID = "form_id", isOrganic = "is_organic", customDisclaimerResponses = "custom_disclaimer_responses"
        case partnerName = "partner_name"
    }

    public init(id: String, createdTime: String, fieldData: [Field], adID: String? = nil, adName: String? = nil,
                adsetID: String? = nil, adsetName: String? = nil, campaignID: String? = nil, campaignName: String? = nil,
                formID: String? = nil, isOrganic: Bool? = nil, platform: String? = nil,
                customDisclaimerResponses: [Consent]? = nil, partnerName: String? = nil) {
        self.id = id
        self.createdTime = createdTime
        self.fieldData = fieldData
        self.adID = adID
        self.adName = adName
        self.adsetID = adsetID
        self.adsetName = adsetName
        self.campaignID = campaignID
        self.campaignName = campaignName
        self.formID = formID
        self.isOrganic = isOrganic
        self.platform = platform
        self.customDisclaimerResponses = customDisclaimerResponses
        self.partnerName = partnerName
    }

    /// The instant Graph stamped, parsed exactly; nil when Graph sent something else.
    public var createdAt: Date? { UTCTime.parse(createdTime) }
}

/// The fields LeadFlow asks for, so the fake and the client agree.
public enum GraphFields {
    public static let forms = "id,name,status,locale,created_time,leads_count,organic_leads_count,expired_leads_count"
    public static let leads = "id,created_time,field_data,ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,form_id,is_organic,platform,custom_disclaimer_responses,partner_name"
}

/// `[from, to)` in whole seconds: Graph's `filtering` on `time_created` is strict on both
/// sides and counts in seconds, so the bounds are widened by one second to include `from`
/// and `to - 1s` and nothing else.
public struct LeadWindow: Sendable, Equatable {
    /// nil: every lead Facebook still returns (a connection's first run).
    public let from: Date?
    public let to: Date

    public init(from: Date?, to: Date) {
        self.from = from
        self.to = to
    }

    public var filtering: String {
        var clauses: [String] = []
        if let from {
            let seconds = Int64(from.timeIntervalSince1970.rounded(.down))
            clauses.append(#"{"field":"time_created","operator":"GREATER_THAN","value":\#(seconds - 1)}"#)
        }
        let upper = Int64(to.timeIntervalSince1970.rounded(.up))
        clauses.append(#"{"field":"time_created","operator":"LESS_THAN","value":\#(upper)}"#)
        return "[" + clauses.joined(separator: ",") + "]"
    }

    public func contains(_ date: Date) -> Bool {
        (from.map { date >= $0 } ?? true) && date < to
    }
}

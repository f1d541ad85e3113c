/// One entry of Graph's `fields` parameter: a field or an edge, its modifiers
/// (`.limit(100)`, `.filtering([…])`, `.user_id(42)`) and, for an edge or an object field,
/// the fields asked of it (`{id,name}`). Graph's field-expansion syntax:
/// https://developers.facebook.com/docs/graph-api/guides/field-expansion
struct FieldRequest: Equatable, Sendable {
    let name: String
    let modifiers: [String: String]
    /// nil: none given, the node type's default fields.
    let subfields: [FieldRequest]?

    init(name: String, modifiers: [String: String] = [:], subfields: [FieldRequest]? = nil) {
        self.name = name
        self.modifiers = modifiers
        self.subfields = subfields
    }

    /// Parses `a,b.limit(5){c,d.filtering([{"x":1}])},e`. Modifier arguments may hold
    /// commas, brackets and quoted strings (a `filtering` is JSON), so the text is walked by
    /// hand with a nesting count rather than split. nil: not a field list Graph would accept.
    static func parseList(_ text: String) -> [FieldRequest]? {
        var parser = Parser(Array(text.utf8))
        guard let list = parser.list(), parser.atEnd else { return nil }
        return list
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index >= bytes.count }

        mutating func skipSpaces() {
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
        }

        mutating func list() -> [FieldRequest]? {
            var items: [FieldRequest] = []
            while true {
                skipSpaces()
                guard let item = field() else { return nil }
                items.append(item)
                skipSpaces()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ",") else { return items }
                index += 1
            }
        }

        mutating func name() -> String? {
            let start = index
            while index < bytes.count, Self.isNameByte(bytes[index]) { index += 1 }
            return index > start ? String(decoding: bytes[start..<index], as: UTF8.self) : nil
        }

        static func isNameByte(_ byte: UInt8) -> Bool {
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }

        mutating func field() -> FieldRequest? {
            guard let name = name() else { return nil }
            var modifiers: [String: String] = [:]
            while index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard let modifier = self.name(), index < bytes.count, bytes[index] == UInt8(ascii: "("),
                      let argument = balanced(open: UInt8(ascii: "("), close: UInt8(ascii: ")")) else { return nil }
                modifiers[modifier] = argument
            }
            var subfields: [FieldRequest]?
            if index < bytes.count, bytes[index] == UInt8(ascii: "{") {
                index += 1
                guard let inner = list(), index < bytes.count, bytes[index] == UInt8(ascii: "}") else { return nil }
                index += 1
                subfields = inner
            }
            return FieldRequest(name: name, modifiers: modifiers, subfields: subfields)
        }

        /// The text between `open` (at `index`) and its matching `close`, quotes respected.
        mutating func balanced(open: UInt8, close: UInt8) -> String? {
            let start = index + 1
            var depth = 0
            var inString = false, escaped = false
            while index < bytes.count {
                let byte = bytes[index]
                if inString {
                    if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                } else if byte == open {
                    depth += 1
                } else if byte == close {
                    depth -= 1
                    if depth == 0 {
                        index += 1
                        return String(decoding: bytes[start..<(index - 1)], as: UTF8.self)
                    }
                }
                index += 1
            }
            return nil
        }
    }
}

/// The node types the fake serves, with the fields Meta's SDK (`facebook-business` 25.0.1,
/// `facebook_business/adobjects/*.py`) lists for each: a field in the list is served, or
/// omitted when the scenario has no value for it (as Graph omits empty fields); a field
/// not in the list is refused with Graph's `(#100) Tried accessing nonexisting field`.
enum NodeType: String, Sendable {
    case page = "Page"
    case leadgenForm = "LeadgenForm"
    /// Graph's own name for a lead node in its error messages is not documented; the SDK's
    /// class is `Lead`.
    case lead = "Lead"
    case user = "User"
    case hasLeadAccess = "HasLeadAccess"

    /// What Graph returns when `fields` is not given. Graph documents defaults for few
    /// nodes: a User gives `name,id`; the v2.11 retrieving guide shows a form read without
    /// fields as `id,locale,name,status`, and the lead read as `created_time,id,ad_id,form_id,field_data`.
    var defaultFields: [String] {
        switch self {
        case .page: return ["name", "id"]
        case .leadgenForm: return ["id", "locale", "name", "status"]
        case .lead: return ["created_time", "id", "ad_id", "form_id", "field_data"]
        case .user: return ["name", "id"]
        case .hasLeadAccess: return HasLeadAccessFields.all
        }
    }

    /// Fields of the node, edges not included (edges are paths: `/{id}/leads`).
    var fields: Set<String> {
        switch self {
        case .page: return PageFields.all
        case .leadgenForm: return Set(LeadgenFormFields.all)
        case .lead: return Set(LeadFields.all)
        case .user: return UserFields.all
        case .hasLeadAccess: return Set(HasLeadAccessFields.all)
        }
    }

    /// Edges that can also be read inside `fields` (field expansion).
    var edges: Set<String> {
        switch self {
        case .page: return ["leadgen_forms"]
        case .leadgenForm: return ["leads"]
        case .user: return ["accounts", "permissions"]
        case .lead, .hasLeadAccess: return []
        }
    }
}

/// `LeadgenForm.Field` in `facebook_business/adobjects/leadgenform.py`: 23 fields.
enum LeadgenFormFields {
    static let all = [
        "allow_organic_lead", "block_display_for_non_targeted_viewer", "context_card", "created_time", "creator",
        "expired_leads_count", "follow_up_action_text", "follow_up_action_url", "id", "is_optimized_for_quality",
        "leads_count", "legal_content", "locale", "name", "organic_leads_count", "page", "page_id", "privacy_policy_url",
        "question_page_custom_headline", "questions", "status", "thank_you_page", "tracking_parameters",
    ]
}

/// `Lead.Field` in `facebook_business/adobjects/lead.py`: 19 fields.
enum LeadFields {
    static let all = [
        "ad_id", "ad_name", "adset_id", "adset_name", "campaign_id", "campaign_name", "created_time",
        "custom_disclaimer_responses", "field_data", "form_id", "home_listing", "id", "is_organic", "partner_name",
        "platform", "post", "post_submission_check_result", "retailer_item_id", "vehicle",
    ]
}

/// `HasLeadAccess.Field` in `facebook_business/adobjects/hasleadaccess.py`: 9 fields.
enum HasLeadAccessFields {
    static let all = [
        "app_has_leads_permission", "can_access_lead", "enabled_lead_access_manager", "failure_reason",
        "failure_resolution", "is_page_admin", "page_id", "user_has_leads_permission", "user_id",
    ]
}

/// `User.Field` in `facebook_business/adobjects/user.py`: 49 fields.
enum UserFields {
    static let all: Set<String> = [
        "about", "age_range", "birthday", "client_business_id", "community", "cover", "currency", "education", "email",
        "favorite_athletes", "favorite_teams", "first_name", "gender", "hometown", "id", "inspirational_people",
        "install_type", "installed", "is_guest_user", "is_work_account", "languages", "last_name", "link",
        "local_news_megaphone_dismiss_status", "local_news_subscription_status", "locale", "location", "meeting_for",
        "middle_name", "name", "name_format", "payment_pricepoints", "political", "profile_pic", "quotes",
        "relationship_status", "religion", "shared_login_upgrade_required_by", "short_name", "significant_other", "sports",
        "supports_donate_button_in_live_video", "third_party_id", "timezone", "token_for_business", "updated_time",
        "verified", "video_upload_limits", "website",
    ]
}

/// `Page.Field` in `facebook_business/adobjects/page.py`: 153 fields.
enum PageFields {
    static let all: Set<String> = [
        "about", "access_token", "ad_campaign", "affiliation", "app_id", "artists_we_like", "attire",
        "available_promo_offer_ids", "awards", "band_interests", "band_members", "best_page", "bio", "birthday",
        "booking_agent", "breaking_news_usage", "built", "business", "can_checkin", "can_post", "category",
        "category_list", "checkins", "company_overview", "connected_instagram_account",
        "connected_page_backed_instagram_account", "contact_address", "copyright_attribution_insights",
        "copyright_whitelisted_ig_partners", "country_page_likes", "cover", "culinary_team", "current_location",
        "delivery_and_pickup_option_info", "description", "description_html", "differently_open_offerings", "directed_by",
        "display_subtext", "displayed_message_response_time", "does_viewer_have_page_permission_link_ig", "emails",
        "engagement", "fan_count", "featured_video", "features", "followers_count", "food_styles", "founded",
        "general_info", "general_manager", "genre", "global_brand_page_name", "global_brand_root_id", "has_added_app",
        "has_lead_access", "has_transitioned_to_new_page_experience", "has_whatsapp_business_number",
        "has_whatsapp_number", "hometown", "hours", "id", "impressum", "influences", "instagram_business_account",
        "is_always_open", "is_calling_eligible", "is_chain", "is_community_page", "is_eligible_for_branded_content",
        "is_eligible_for_disable_connect_ig_btn_for_non_page_admin_am_web", "is_messenger_bot_get_started_enabled",
        "is_messenger_platform_bot", "is_owned", "is_permanently_closed", "is_published", "is_unclaimed", "is_verified",
        "is_webhooks_subscribed", "keywords", "leadgen_tos_acceptance_time", "leadgen_tos_accepted",
        "leadgen_tos_accepting_user", "link", "location", "members", "merchant_id", "merchant_review_status",
        "messaging_feature_status", "messenger_ads_default_icebreakers", "messenger_ads_default_quick_replies",
        "messenger_ads_quick_replies_type", "mini_shop_storefront", "mission", "mpg", "name",
        "name_with_location_descriptor", "network", "new_like_count", "offer_eligible", "overall_star_rating",
        "owner_business", "page_token", "parent_page", "parking", "payment_options", "personal_info",
        "personal_interests", "pharma_safety_info", "phone", "pickup_options", "place_type", "plot_outline",
        "preferred_audience", "press_contact", "price_range", "priority_hours", "privacy_info_url", "produced_by",
        "products", "promotion_eligible", "promotion_ineligible_reason", "public_transit", "rating_count", "recipient",
        "record_label", "release_date", "restaurant_services", "restaurant_specialties", "schedule", "screenplay_by",
        "season", "single_line_address", "starring", "start_info", "store_code", "store_location_descriptor",
        "store_number", "studio", "supports_donate_button_in_live_video", "talking_about_count", "temporary_status",
        "unread_message_count", "unread_notif_count", "unseen_message_count", "user_access_expire_time", "username",
        "verification_status", "voip_info", "website", "were_here_count", "whatsapp_number", "written_by",
    ]
}

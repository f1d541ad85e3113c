import Foundation

/// What LeadFlow tells people and systems about (`notifications`, the outbox): one event
/// per fact, written in the transaction that records the fact, delivered at least once.
public enum NotificationType: String, Sendable, CaseIterable, Equatable {
    /// The reminder of a cycle (day 75): reauthenticate before the end.
    case reminderDue = "reminder.due"
    /// The cycle ended without a reauthentication.
    case reminderExpired = "reminder.expired"
    case connectionCreated = "connection.created"
    case connectionReauthenticated = "connection.reauthenticated"
    /// A void period opened: leads stopped flowing, with the cause and its remedy.
    case connectionVoid = "connection.void"
    /// A void period's backfill is done, with the count of leads it recovered.
    case connectionRecovered = "connection.recovered"
}

/// One field of an event, as its JSON carries it.
public enum NotificationValue: Sendable, Equatable, Codable {
    case text(String)
    case number(Int)
    case flag(Bool)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // JSONDecoder is strict: a Bool never decodes from a number, nor an Int from true.
        if let flag = try? container.decode(Bool.self) {
            self = .flag(flag)
        } else if let number = try? container.decode(Int.self) {
            self = .number(number)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .number(let number): try container.encode(number)
        case .flag(let flag): try container.encode(flag)
        }
    }
}

/// A fact to record in the outbox: its type, what makes it one (`subject`: the cycle or
/// the void period), and the event's own fields. Nothing here may hold a token or a lead's
/// personal data: only instants, causes, counts and the remedy sentence.
public struct NotificationFacts: Sendable, Equatable {
    public let type: NotificationType
    /// With the connection and the type, the key that makes the event once-only: the
    /// cycle's start for reminders and (re)authentications, the void period's id for the
    /// void and its recovery.
    public let subject: String
    public let fields: [String: NotificationValue]

    public init(type: NotificationType, subject: String, fields: [String: NotificationValue]) {
        self.type = type
        self.subject = subject
        self.fields = fields
    }

    /// The fields as a JSON object (keys sorted), for the `jsonb` column.
    public var fieldsJSON: String { NotificationFacts.json(fields) }

    public static func json(_ fields: [String: NotificationValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Text, numbers and flags always encode.
        return String(decoding: (try? encoder.encode(fields)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The fields of a stored event's JSON object (empty if it is not one).
    public static func fields(json: String) -> [String: NotificationValue] {
        (try? JSONDecoder().decode([String: NotificationValue].self, from: Data(json.utf8))) ?? [:]
    }

    public static func reminderDue(cycleStartedAt: Date, dueAt: Date, expiresAt: Date) -> NotificationFacts {
        NotificationFacts(type: .reminderDue, subject: UTCTime.iso8601(cycleStartedAt), fields: [
            "cycle_started_at": .text(UTCTime.iso8601(cycleStartedAt)), "due_at": .text(UTCTime.iso8601(dueAt)),
            "expires_at": .text(UTCTime.iso8601(expiresAt)),
        ])
    }

    public static func reminderExpired(cycleStartedAt: Date, expiredAt: Date) -> NotificationFacts {
        NotificationFacts(type: .reminderExpired, subject: UTCTime.iso8601(cycleStartedAt), fields: [
            "cycle_started_at": .text(UTCTime.iso8601(cycleStartedAt)), "expired_at": .text(UTCTime.iso8601(expiredAt)),
            "remedy": .text(PreflightRules.remedy(for: .tokenExpired)),
        ])
    }

    /// - Parameters:
    ///   - expiresAt: the new cycle's end, when the caller knows the policy.
    public static func connectionCreated(authenticatedAt: Date, expiresAt: Date?, reminderAt: Date?) -> NotificationFacts {
        var fields: [String: NotificationValue] = ["authenticated_at": .text(UTCTime.iso8601(authenticatedAt))]
        if let expiresAt { fields["expires_at"] = .text(UTCTime.iso8601(expiresAt)) }
        if let reminderAt { fields["reminder_at"] = .text(UTCTime.iso8601(reminderAt)) }
        return NotificationFacts(type: .connectionCreated, subject: "created", fields: fields)
    }

    public static func connectionReauthenticated(authenticatedAt: Date, expiresAt: Date?, reminderAt: Date?, closed: VoidPeriod?,
                                                 authenticatorChanged: Bool) -> NotificationFacts {
        var fields: [String: NotificationValue] = ["authenticated_at": .text(UTCTime.iso8601(authenticatedAt)),
                                                   "authenticator_changed": .flag(authenticatorChanged)]
        if let expiresAt { fields["expires_at"] = .text(UTCTime.iso8601(expiresAt)) }
        if let reminderAt { fields["reminder_at"] = .text(UTCTime.iso8601(reminderAt)) }
        if let closed {
            fields["void_period_id"] = .number(Int(closed.id))
            fields["void_cause"] = .text(closed.cause.rawValue)
            fields["void_started_at"] = .text(UTCTime.iso8601(closed.startedAt))
        }
        return NotificationFacts(type: .connectionReauthenticated, subject: UTCTime.iso8601(authenticatedAt), fields: fields)
    }

    public static func connectionVoid(voidPeriodID: Int64, cause: VoidCause, detail: String, since: Date) -> NotificationFacts {
        NotificationFacts(type: .connectionVoid, subject: "void-period-\(voidPeriodID)", fields: [
            "void_period_id": .number(Int(voidPeriodID)), "cause": .text(cause.rawValue), "detail": .text(detail),
            "remedy": .text(PreflightRules.remedy(for: cause)), "since": .text(UTCTime.iso8601(since)),
        ])
    }

    public static func connectionRecovered(_ period: VoidPeriod, recovered: Int) -> NotificationFacts {
        var fields: [String: NotificationValue] = [
            "void_period_id": .number(Int(period.id)), "cause": .text(period.cause.rawValue),
            "started_at": .text(UTCTime.iso8601(period.startedAt)), "recovered": .number(recovered),
        ]
        if let ended = period.endedAt { fields["ended_at"] = .text(UTCTime.iso8601(ended)) }
        return NotificationFacts(type: .connectionRecovered, subject: "void-period-\(period.id)", fields: fields)
    }
}

/// Where an event goes. Addresses are resolved when it is sent, never stored beside it.
public enum NotificationChannel: String, Sendable, CaseIterable, Equatable, Comparable {
    case webhook
    /// The Connector Authenticator (`connect --notify-email`).
    case authenticatorMail = "mail:authenticator"
    /// The instance's Customer Success Manager (the pipeline's `csm_email`).
    case csmMail = "mail:csm"

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// Who hears of what (docs/connections.md, "Notifications"): the webhook hears everything; reminders
/// and voids go to the Connector Authenticator, `connection.*` to the instance's CSM.
public enum NotificationRouting {
    /// What the deployment can reach for one event's connection.
    public struct Reach: Sendable, Equatable {
        public var webhook: Bool
        public var mail: Bool
        public var authenticatorAddress: Bool
        public var csmAddress: Bool

        public init(webhook: Bool, mail: Bool, authenticatorAddress: Bool, csmAddress: Bool) {
            self.webhook = webhook
            self.mail = mail
            self.authenticatorAddress = authenticatorAddress
            self.csmAddress = csmAddress
        }
    }

    public static func channels(for type: NotificationType, fields: [String: NotificationValue], reach: Reach) -> [NotificationChannel] {
        var channels: [NotificationChannel] = reach.webhook ? [.webhook] : []
        guard reach.mail else { return channels }
        let authenticator: Bool
        let csm: Bool
        switch type {
        case .reminderDue, .reminderExpired:
            authenticator = true
            // A reminder nobody reads lets the connection lapse: without the authenticator's
            // address, the CSM gets it and can pass it on.
            csm = !reach.authenticatorAddress
        case .connectionVoid:
            // The end of a cycle reaches the authenticator as reminder.expired already.
            let cause = fields["cause"].flatMap { if case .text(let text) = $0 { return VoidCause(rawValue: text) } else { return nil } }
            authenticator = cause != .tokenExpired && cause != .dataAccessExpired
            csm = true
        case .connectionCreated, .connectionReauthenticated, .connectionRecovered:
            authenticator = false
            csm = true
        }
        if authenticator && reach.authenticatorAddress { channels.append(.authenticatorMail) }
        if csm && reach.csmAddress { channels.append(.csmMail) }
        return channels
    }
}

/// An event as the outbox holds it, with what is needed to render and address it.
public struct StoredNotification: Sendable, Equatable {
    public let id: Int64
    /// The `id` receivers see, the same on every redelivery (a UUID).
    public let eventID: String
    public let type: NotificationType
    public let occurredAt: Date
    public let fields: [String: NotificationValue]
    public let connectionID: Int64
    public let instance: String
    public let pageID: String
    public let label: String
    public let pageName: String?
    public let authenticatorUserID: String
    public let authenticatorName: String?
    /// The authenticator's address, sealed like tokens (nil: none was given at connect).
    public let sealedAddress: SealedAddress?

    public init(id: Int64, eventID: String, type: NotificationType, occurredAt: Date, fields: [String: NotificationValue],
                connectionID: Int64, instance: String, pageID: String, label: String, pageName: String?,
                authenticatorUserID: String, authenticatorName: String?, sealedAddress: SealedAddress?) {
        self.id = id
        self.eventID = eventID
        self.type = type
        self.occurredAt = occurredAt
        self.fields = fields
        self.connectionID = connectionID
        self.instance = instance
        self.pageID = pageID
        self.label = label
        self.pageName = pageName
        self.authenticatorUserID = authenticatorUserID
        self.authenticatorName = authenticatorName
        self.sealedAddress = sealedAddress
    }

    /// The Page's name when known, else its id: what people read.
    public var pageTitle: String { pageName ?? "Page \(pageID)" }

    public func text(_ key: String) -> String? {
        if case .text(let text)? = fields[key] { return text }
        return nil
    }

    public func date(_ key: String) -> Date? { text(key).flatMap(UTCTime.parse) }

    public func number(_ key: String) -> Int? {
        if case .number(let number)? = fields[key] { return number }
        return nil
    }
}

/// An e-mail address sealed with the token key, bound to its connection.
public struct SealedAddress: Sendable, Equatable {
    public let ciphertext: Data
    public let keyID: String
    /// The associated data it was sealed under.
    public let context: String

    public init(ciphertext: Data, keyID: String, context: String) {
        self.ciphertext = ciphertext
        self.keyID = keyID
        self.context = context
    }

    /// Distinct from the token's context: a token's ciphertext copied into the address
    /// column (or back) does not open.
    public static func context(instance: String, pageID: String) -> String {
        ConnectionRecord.sealContext(instance: instance, pageID: pageID) + "/notify-email"
    }
}

extension TokenSealer {
    /// Seals an e-mail address like a token (AES-GCM, bound to the connection).
    public func seal(address: EmailAddress, instance: String, pageID: String) throws -> SealedAddress {
        let context = SealedAddress.context(instance: instance, pageID: pageID)
        // AccessToken only carries the text here: it too prints as `<token>`, never the address.
        return SealedAddress(ciphertext: try seal(AccessToken(address.value), boundTo: context), keyID: keyID, context: context)
    }

    public func open(_ sealed: SealedAddress) throws -> EmailAddress? {
        EmailAddress(try open(sealed.ciphertext, boundTo: sealed.context, keyID: sealed.keyID).secret)
    }
}

/// One delivery of one event to one channel, claimed for this pass.
public struct PendingDelivery: Sendable, Equatable {
    public let notification: StoredNotification
    public let channel: NotificationChannel
    /// Attempts made before this pass.
    public let attempts: Int

    public init(notification: StoredNotification, channel: NotificationChannel, attempts: Int) {
        self.notification = notification
        self.channel = channel
        self.attempts = attempts
    }
}

/// What `leadflow notifications` lists: an event and where each of its deliveries stands.
public struct NotificationStatus: Sendable, Equatable {
    public struct Delivery: Sendable, Equatable {
        public let channel: NotificationChannel
        public let attempts: Int
        public let lastAttemptAt: Date?
        public let nextAttemptAt: Date?
        public let deliveredAt: Date?
        /// Safe to show: no secret, no address (the notifier redacts before it stores).
        public let lastError: String?

        public init(channel: NotificationChannel, attempts: Int, lastAttemptAt: Date?, nextAttemptAt: Date?, deliveredAt: Date?,
                    lastError: String?) {
            self.channel = channel
            self.attempts = attempts
            self.lastAttemptAt = lastAttemptAt
            self.nextAttemptAt = nextAttemptAt
            self.deliveredAt = deliveredAt
            self.lastError = lastError
        }

        /// delivered, failing (tried, not yet through) or pending (not tried yet).
        public var state: String { deliveredAt != nil ? "delivered" : lastError != nil || attempts > 0 ? "failing" : "pending" }
    }

    public let eventID: String
    public let type: NotificationType
    public let occurredAt: Date
    public let instance: String
    public let pageID: String
    public let label: String
    /// When the event was given its channels; nil: not yet (the next `notify` does it).
    public let routedAt: Date?
    public let deliveries: [Delivery]

    public init(eventID: String, type: NotificationType, occurredAt: Date, instance: String, pageID: String, label: String,
                routedAt: Date?, deliveries: [Delivery]) {
        self.eventID = eventID
        self.type = type
        self.occurredAt = occurredAt
        self.instance = instance
        self.pageID = pageID
        self.label = label
        self.routedAt = routedAt
        self.deliveries = deliveries
    }
}

/// The outbox (Postgres: `NotificationStore`). Events are written by the stores that
/// record their facts, in the same transaction; this is what delivers and lists them.
public protocol NotificationRepository: Sendable {
    /// Events not yet given their channels, oldest first.
    func unrouted(limit: Int) async throws -> [StoredNotification]
    /// Gives each event its channels (none is a valid answer: nothing was configured), once.
    func route(_ routes: [(notificationID: Int64, channels: [NotificationChannel])], now: Date) async throws
    /// Deliveries due at `now`, each leased to this caller for `lease` of real time so
    /// that two notifiers at once (runs on several hosts) never send the same one twice
    /// at the same moment. A lease outlives a crashed notifier by at most `lease`.
    func claimDue(now: Date, limit: Int, lease: Duration) async throws -> [PendingDelivery]
    /// The outcome of `attempts` more attempts: delivered or not, the last error met (kept
    /// when nil), and when to try again. Ends the lease.
    func recordAttempts(notificationID: Int64, channel: NotificationChannel, attempts: Int, at: Date, delivered: Bool,
                        lastError: String?, nextAttemptAt: Date) async throws
    /// Ends a lease without an attempt, to try again at `until` (the channel's receiver
    /// was found down earlier in this pass).
    func postpone(notificationID: Int64, channel: NotificationChannel, error: String, until: Date) async throws
    /// Every event, newest first, with its deliveries.
    func statuses(limit: Int) async throws -> [NotificationStatus]
}

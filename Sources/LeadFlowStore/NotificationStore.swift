import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// Writes an event into the outbox inside the caller's transaction, the one that records
/// its fact: the event exists exactly when the fact does. Once per (connection, type,
/// subject): a second run on the same cycle or period writes nothing.
enum Outbox {
    static func write(_ db: PostgresConnection, connectionID: Int64, _ facts: NotificationFacts, at: Date) throws {
        try db.query("""
            INSERT INTO notifications (connection_id, type, subject, occurred_at, fields) VALUES ($1, $2, $3, $4, $5::jsonb)
            ON CONFLICT (connection_id, type, subject) DO NOTHING
            """, [connectionID, facts.type.rawValue, facts.subject, at, facts.fieldsJSON], label: "write notification")
    }
}

/// The notification outbox: routing events to channels, leasing due deliveries to one
/// notifier at a time, recording attempts, and listing where each event stands.
public struct NotificationStore: NotificationRepository {
    /// Every query runs on the session's own thread, never on the cooperative pool.
    let session: PostgresSession

    public init(_ session: PostgresSession) {
        self.session = session
    }

    /// The event and its connection (columns 0–13 of every query that reads events).
    private static let eventColumns = """
        n.id, n.event_id, n.type, n.occurred_at, n.fields::text, c.id, c.instance, c.page_id, c.label, c.page_name,
        c.authenticator_user_id, c.authenticator_name, c.notify_email_ciphertext, c.notify_email_key_id
        """

    public func unrouted(limit: Int) async throws -> [StoredNotification] {
        try await session.run { db in
            try db.query("""
                SELECT \(Self.eventColumns) FROM notifications n JOIN connections c ON c.id = n.connection_id
                WHERE n.routed_at IS NULL ORDER BY n.id LIMIT $1
                """, [limit], label: "unrouted notifications").all.map(Self.notification)
        }
    }

    public func route(_ routes: [(notificationID: Int64, channels: [NotificationChannel])], now: Date) async throws {
        try await session.run { db in
            try db.transaction { db in
                for route in routes {
                    // Whoever marks it routed first gives it its channels; a notifier racing
                    // this one waits on the row, then finds it routed and adds nothing.
                    let marked = try db.query("UPDATE notifications SET routed_at = $2 WHERE id = $1 AND routed_at IS NULL RETURNING id",
                                              [route.notificationID, now], label: "route notification")
                    guard marked.count == 1, !route.channels.isEmpty else { continue }
                    try db.query("""
                        INSERT INTO notification_deliveries (notification_id, channel, next_attempt_at)
                        SELECT $1, channel, $3 FROM unnest($2::text[]) AS channel ON CONFLICT DO NOTHING
                        """, [route.notificationID, route.channels.map(\.rawValue), now], label: "add deliveries")
                }
            }
        }
    }

    public func claimDue(now: Date, limit: Int, lease: Duration) async throws -> [PendingDelivery] {
        try await session.run { db in
            // The lease runs on the database's clock: LEADFLOW_NOW may stand still, and a
            // crashed notifier's claim must still end.
            try db.query("""
                WITH claimed AS (
                    UPDATE notification_deliveries d SET leased_until = clock_timestamp() + $3::interval
                    FROM (SELECT notification_id, channel FROM notification_deliveries
                          WHERE delivered_at IS NULL AND next_attempt_at <= $1
                            AND (leased_until IS NULL OR leased_until < clock_timestamp())
                          ORDER BY next_attempt_at, notification_id, channel LIMIT $2
                          FOR UPDATE SKIP LOCKED) due
                    WHERE d.notification_id = due.notification_id AND d.channel = due.channel
                    RETURNING d.notification_id, d.channel, d.attempts)
                SELECT \(Self.eventColumns), cl.channel, cl.attempts
                FROM claimed cl JOIN notifications n ON n.id = cl.notification_id JOIN connections c ON c.id = n.connection_id
                ORDER BY n.id, cl.channel
                """, [now, limit, "\(lease.milliseconds) milliseconds"], label: "claim due deliveries").all.compactMap { row in
                guard let channel = NotificationChannel(rawValue: try row.string(14) ?? "") else { return nil }
                return PendingDelivery(notification: try Self.notification(row), channel: channel, attempts: try row.int(15) ?? 0)
            }
        }
    }

    public func recordAttempts(notificationID: Int64, channel: NotificationChannel, attempts: Int, at: Date, delivered: Bool,
                               lastError: String?, nextAttemptAt: Date) async throws {
        try await session.run { db in
            try db.transaction { db in
                // A delivery keeps the error it got past: "delivered after 2 attempts, the first refused with HTTP 500".
                try db.query("""
                    UPDATE notification_deliveries SET attempts = attempts + $3, last_attempt_at = $4, last_error = coalesce($5, last_error),
                        delivered_at = CASE WHEN $7 THEN $4::timestamptz END, next_attempt_at = $6, leased_until = NULL
                    WHERE notification_id = $1 AND channel = $2
                    """, [notificationID, channel.rawValue, attempts, at, lastError, nextAttemptAt, delivered], label: "record delivery attempts")
                guard delivered else { return }
                // The reminders table says whether its reminder reached anyone (`leadflow reminders`).
                try db.query("""
                    UPDATE reminders r SET delivered_at = $2 FROM notifications n
                    WHERE n.id = $1 AND n.type IN ('reminder.due', 'reminder.expired') AND r.delivered_at IS NULL
                      AND r.connection_id = n.connection_id AND r.cycle_started_at = (n.fields->>'cycle_started_at')::timestamptz
                      AND r.kind = CASE n.type WHEN 'reminder.due' THEN 'reauthentication_due' ELSE 'expired' END
                    """, [notificationID, at], label: "reminder delivered")
            }
        }
    }

    public func postpone(notificationID: Int64, channel: NotificationChannel, error: String, until: Date) async throws {
        try await session.run { db in
            _ = try db.query("""
                UPDATE notification_deliveries SET leased_until = NULL, last_error = $3, next_attempt_at = $4
                WHERE notification_id = $1 AND channel = $2
                """, [notificationID, channel.rawValue, error, until], label: "postpone delivery")
        }
    }

    public func statuses(limit: Int) async throws -> [NotificationStatus] {
        try await session.run { db in
            let rows = try db.query("""
                SELECT n.id, n.event_id, n.type, n.occurred_at, c.instance, c.page_id, c.label, n.routed_at,
                       d.channel, d.attempts, d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.last_error
                FROM (SELECT * FROM notifications ORDER BY occurred_at DESC, id DESC LIMIT $1) n
                JOIN connections c ON c.id = n.connection_id
                LEFT JOIN notification_deliveries d ON d.notification_id = n.id
                ORDER BY n.occurred_at DESC, n.id DESC, d.channel
                """, [limit], label: "list notifications").all
            var statuses: [NotificationStatus] = []
            var current: (id: Int64, row: PostgresRow, deliveries: [NotificationStatus.Delivery])?
            func flush() throws {
                guard let current, let type = NotificationType(rawValue: try current.row.string(2) ?? "") else { return }
                statuses.append(NotificationStatus(eventID: try current.row.string(1)!, type: type, occurredAt: try current.row.date(3)!,
                                                   instance: try current.row.string(4)!, pageID: try current.row.string(5)!,
                                                   label: try current.row.string(6)!, routedAt: try current.row.date(7),
                                                   deliveries: current.deliveries))
            }
            for row in rows {
                let id = Int64(try row.int(0)!)
                if current?.id != id {
                    try flush()
                    current = (id, row, [])
                }
                if let channel = NotificationChannel(rawValue: try row.string(8) ?? "") {
                    current?.deliveries.append(.init(channel: channel, attempts: try row.int(9) ?? 0, lastAttemptAt: try row.date(10),
                                                     nextAttemptAt: try row.date(11), deliveredAt: try row.date(12),
                                                     lastError: try row.string(13)))
                }
            }
            try flush()
            return statuses
        }
    }

    private static func notification(_ row: PostgresRow) throws -> StoredNotification {
        let instance = try row.string(6)!, pageID = try row.string(7)!
        var sealed: SealedAddress?
        if let ciphertext = try row.bytes(12), let keyID = try row.string(13) {
            sealed = SealedAddress(ciphertext: ciphertext, keyID: keyID, context: SealedAddress.context(instance: instance, pageID: pageID))
        }
        return StoredNotification(
            id: Int64(try row.int(0)!), eventID: try row.string(1)!, type: NotificationType(rawValue: try row.string(2)!)!,
            occurredAt: try row.date(3)!, fields: NotificationFacts.fields(json: try row.string(4) ?? "{}"),
            connectionID: Int64(try row.int(5)!), instance: instance, pageID: pageID, label: try row.string(8)!,
            pageName: try row.string(9), authenticatorUserID: try row.string(10)!, authenticatorName: try row.string(11),
            sealedAddress: sealed)
    }
}

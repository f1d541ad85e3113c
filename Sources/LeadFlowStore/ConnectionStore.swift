import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// The rows behind connections, their authentication events, void periods and reminders.
public struct ConnectionStore: ConnectionRepository {
    /// Every query runs on the session's own thread, never on the cooperative pool.
    let session: PostgresSession

    public init(_ session: PostgresSession) {
        self.session = session
    }

    private static let columns = """
        c.id, c.instance, c.page_id, c.label, c.page_name, c.authenticator_user_id, c.token_ciphertext,
        c.authenticator_name, c.token_key_id, c.token_type, c.scopes, c.authenticated_at, c.fb_expires_at,
        c.fb_data_access_expires_at, c.user_token_expires_at, c.verified_at, v.id AS void_id, v.cause, v.cause_detail, v.started_at
        FROM connections c LEFT JOIN void_periods v ON v.connection_id = c.id AND v.ended_at IS NULL
        """

    public func all() async throws -> [ConnectionRecord] {
        try await session.run { db in
            try db.query("SELECT \(Self.columns) ORDER BY c.instance, c.label", label: "list connections").all.map(Self.record)
        }
    }

    /// How many connections hold a sealed token, and one key id they were sealed with:
    /// what a missing key file would lock out.
    public func sealedTokens() async throws -> (count: Int, keyID: String?) {
        try await session.run { db in
            let row = try db.query("SELECT count(*), min(token_key_id) FROM connections", label: "connections and their key")[0]
            return (try row.int(0) ?? 0, try row.string(1))
        }
    }

    public func connection(label: String) async throws -> ConnectionRecord? {
        try await session.run { db in
            try db.query("SELECT \(Self.columns) WHERE c.label = $1", [label], label: "connection by label").all.map(Self.record).first
        }
    }

    public func connection(instance: String, pageID: String) async throws -> ConnectionRecord? {
        try await session.run { db in
            try db.query("SELECT \(Self.columns) WHERE c.instance = $1 AND c.page_id = $2", [instance, pageID],
                         label: "connection by page").all.map(Self.record).first
        }
    }

    /// Stores a (re)authentication in one transaction: the connection row, the events, the
    /// end of any open void period at `now` (its window is then due for backfill), and the
    /// `connection.created` or `connection.reauthenticated` notification.
    public func saveAuthentication(_ auth: Authentication, now: Date) async throws -> AuthenticationSaved {
        try await session.run { db in
            try db.transaction { db in
                let existing = try db.query("SELECT id, authenticator_user_id, label FROM connections WHERE instance = $1 AND page_id = $2 FOR UPDATE",
                                            [auth.instance, auth.pageID], label: "lock connection")
                // Behind that lock, a `key rotate` that retired a key has committed: a token
                // sealed under it now would open nowhere once its file is gone.
                let retired = try db.query("SELECT key_id FROM retired_token_keys WHERE key_id = $1 OR key_id = $2",
                                           [auth.tokenKeyID, auth.notifyAddress?.keyID], label: "retired token keys")
                guard retired.count == 0 else {
                    throw VaultError(kind: .keyRetired, message: "the token key was rotated while this command ran (key \(try retired[0].string(0) ?? "?") is retired); run it again")
                }
                let id: Int64
                var previous: String?
                var closed: VoidPeriod?
                if existing.count == 1 {
                    id = Int64(try existing[0].int(0)!)
                    let before = try existing[0].string(1)!
                    if before != auth.authenticatorUserID { previous = before }
                    // SET reads the row as it was: a new authenticator without a new address
                    // loses the last one's (their reminders must not reach the previous person).
                    try db.query("""
                        UPDATE connections SET label = $2, page_name = coalesce($3, page_name), authenticator_user_id = $4,
                            token_ciphertext = $5, authenticator_name = $6, token_key_id = $7, token_type = $8, scopes = $9,
                            authenticated_at = $10, fb_expires_at = $11, fb_data_access_expires_at = $12, user_token_expires_at = $13,
                            notify_email_ciphertext = CASE WHEN $14::bytea IS NOT NULL THEN $14::bytea
                                                           WHEN authenticator_user_id <> $4 THEN NULL ELSE notify_email_ciphertext END,
                            notify_email_key_id = CASE WHEN $14::bytea IS NOT NULL THEN $15
                                                       WHEN authenticator_user_id <> $4 THEN NULL ELSE notify_email_key_id END,
                            updated_at = $10
                        WHERE id = $1
                        """, [id, auth.label, auth.pageName, auth.authenticatorUserID, auth.tokenCiphertext, auth.authenticatorName,
                              auth.tokenKeyID, auth.tokenType, auth.scopes, now, auth.facebookExpiresAt, auth.facebookDataAccessExpiresAt,
                              auth.userTokenExpiresAt, auth.notifyAddress?.ciphertext, auth.notifyAddress?.keyID],
                        label: "update connection")
                    let open = try db.query("""
                        UPDATE void_periods SET ended_at = greatest($2, started_at + interval '1 microsecond')
                        WHERE connection_id = $1 AND ended_at IS NULL
                        RETURNING id, cause, cause_detail, started_at, ended_at
                        """, [id, now], label: "close void period")
                    if open.count == 1 { closed = try VoidPeriod(row: open[0]) }
                    try event(db, id, "reauthenticated", now, cause: closed.map { "closes void period \($0.id) (\($0.cause.rawValue))" })
                    if let previous {
                        try event(db, id, "authenticator_changed", now, cause: "from user \(previous) to user \(auth.authenticatorUserID)")
                    }
                    try Outbox.write(db, connectionID: id, .connectionReauthenticated(
                        authenticatedAt: now, expiresAt: auth.expiresAt, reminderAt: auth.reminderAt, closed: closed,
                        authenticatorChanged: previous != nil), at: now)
                } else {
                    let inserted = try db.query("""
                        INSERT INTO connections (instance, page_id, label, page_name, authenticator_user_id, token_ciphertext,
                            authenticator_name, token_key_id, token_type, scopes, authenticated_at, fb_expires_at,
                            fb_data_access_expires_at, user_token_expires_at, notify_email_ciphertext, notify_email_key_id,
                            created_at, updated_at)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $11, $11) RETURNING id
                        """, [auth.instance, auth.pageID, auth.label, auth.pageName, auth.authenticatorUserID, auth.tokenCiphertext,
                              auth.authenticatorName, auth.tokenKeyID, auth.tokenType, auth.scopes, now, auth.facebookExpiresAt,
                              auth.facebookDataAccessExpiresAt, auth.userTokenExpiresAt, auth.notifyAddress?.ciphertext,
                              auth.notifyAddress?.keyID], label: "insert connection")
                    id = Int64(try inserted[0].int(0)!)
                    try event(db, id, "authenticated", now, cause: nil)
                    try Outbox.write(db, connectionID: id, .connectionCreated(authenticatedAt: now, expiresAt: auth.expiresAt,
                                                                              reminderAt: auth.reminderAt), at: now)
                }
                return AuthenticationSaved(connectionID: id, reauthenticated: existing.count == 1, previousAuthenticator: previous,
                                   closedVoidPeriod: closed)
            }
        }
    }

    /// Opens a void period unless one is open already (a void connection stays void: one
    /// open period, never two), with its `connection.void` notification. Returns whether
    /// it opened one.
    @discardableResult
    public func openVoidPeriod(connectionID: Int64, cause: VoidCause, detail: String, since: Date, now: Date,
                               cycle: Date?) async throws -> VoidOpening {
        try await session.run { db in
            try db.transaction { db in
                // The row lock orders this after (or before) a reauthentication's own write.
                let current = try db.query("""
                    SELECT authenticated_at, $2::timestamptz IS NULL OR abs(extract(epoch FROM authenticated_at - $2::timestamptz)) < 0.001
                    FROM connections WHERE id = $1 FOR UPDATE
                    """, [connectionID, cycle], label: "lock connection for void")
                guard current.count == 1, try current[0].bool(1) == true else { return .reauthenticated }
                // Never a void period that starts before the authentication it ends.
                let start = max(since, try current[0].date(0) ?? since)
                let opened = try db.query("""
                    INSERT INTO void_periods (connection_id, cause, cause_detail, started_at) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (connection_id) WHERE ended_at IS NULL DO NOTHING RETURNING id
                    """, [connectionID, cause.rawValue, detail, start], label: "open void period")
                guard opened.count == 1 else { return .alreadyOpen }
                let kind: String
                switch cause {
                case .tokenExpired, .dataAccessExpired: kind = "expired"
                case .tokenInvalidated: kind = "invalid"
                case .permissionRevoked, .leadAccessLost: kind = "revoked"
                }
                try event(db, connectionID, kind, now, cause: "\(cause.rawValue): \(detail)")
                try Outbox.write(db, connectionID: connectionID, .connectionVoid(voidPeriodID: Int64(try opened[0].int(0)!), cause: cause,
                                                                                 detail: detail, since: start), at: now)
                return .opened
            }
        }
    }

    /// Records a successful check, once per connection and UTC day (runs come every few
    /// minutes), and what Facebook now says of the Page token's end and of data access.
    public func recordVerified(connectionID: Int64, facebookExpiresAt: Date?, dataAccessExpiresAt: Date?, now: Date,
                               cycle: Date) async throws {
        try await session.run { db in
            let current = try db.query("""
                UPDATE connections SET fb_expires_at = $2, fb_data_access_expires_at = $3, verified_at = $4
                WHERE id = $1 AND abs(extract(epoch FROM authenticated_at - $5::timestamptz)) < 0.001
                """, [connectionID, facebookExpiresAt, dataAccessExpiresAt, now, cycle], label: "record token facts")
            // A reauthentication came in since the check: its token is not the one checked.
            guard current.affectedRows == 1 else { return }
            try db.query("""
                INSERT INTO auth_events (connection_id, kind, occurred_at)
                SELECT $1, 'verified', $2::timestamptz
                WHERE NOT EXISTS (SELECT 1 FROM auth_events WHERE connection_id = $1 AND kind = 'verified'
                                  AND occurred_at >= date_trunc('day', $2::timestamptz) AND occurred_at <= $2::timestamptz)
                """, [connectionID, now], label: "record verified")
        }
    }

    /// Writes a reminder once per connection, kind and cycle, with its `reminder.due` or
    /// `reminder.expired` notification. Returns whether this call wrote it.
    @discardableResult
    public func writeReminder(connectionID: Int64, kind: String, cycleStartedAt: Date, dueAt: Date, expiresAt: Date,
                              now: Date) async throws -> Bool {
        try await session.run { db in
            try db.transaction { db in
                let written = try db.query("""
                    INSERT INTO reminders (connection_id, kind, cycle_started_at, due_at, expires_at, created_at)
                    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (connection_id, kind, cycle_started_at) DO NOTHING RETURNING id
                    """, [connectionID, kind, cycleStartedAt, dueAt, expiresAt, now], label: "write reminder")
                guard written.count == 1 else { return false }
                if kind == "reauthentication_due" {
                    try event(db, connectionID, "expiring", now, cause: "reauthentication due by \(UTCTime.iso8601(expiresAt))")
                    try Outbox.write(db, connectionID: connectionID, .reminderDue(cycleStartedAt: cycleStartedAt, dueAt: dueAt,
                                                                                  expiresAt: expiresAt), at: now)
                } else {
                    try Outbox.write(db, connectionID: connectionID, .reminderExpired(cycleStartedAt: cycleStartedAt, expiredAt: expiresAt),
                                     at: now)
                }
                return true
            }
        }
    }

    /// Reminders of the current cycles, oldest first.
    public func reminders() async throws -> [Reminder] {
        try await session.run { db in
            try db.query("""
                SELECT c.label, c.instance, c.page_id, r.kind, r.due_at, r.expires_at, r.created_at, r.delivered_at
                FROM reminders r JOIN connections c ON c.id = r.connection_id
                WHERE r.cycle_started_at = c.authenticated_at ORDER BY r.due_at, c.label
                """, label: "list reminders").all.map { row in
                Reminder(connectionLabel: try row.string(0)!, instance: try row.string(1)!, pageID: try row.string(2)!,
                            kind: try row.string(3)!, dueAt: try row.date(4)!, expiresAt: try row.date(5)!,
                            createdAt: try row.date(6)!, deliveredAt: try row.date(7))
            }
        }
    }

    public func authEvents(connectionID: Int64) async throws -> [AuthEvent] {
        try await session.run { db in
            try db.query("SELECT kind, occurred_at, cause FROM auth_events WHERE connection_id = $1 ORDER BY occurred_at, id",
                         [connectionID], label: "auth events").all.map { AuthEvent(kind: try $0.string(0)!, at: try $0.date(1)!, cause: try $0.string(2)) }
        }
    }

    public func voidPeriods(connectionID: Int64) async throws -> [VoidPeriod] {
        try await session.run { db in
            try db.query("SELECT id, cause, cause_detail, started_at, ended_at FROM void_periods WHERE connection_id = $1 ORDER BY started_at",
                         [connectionID], label: "void periods").all.map(VoidPeriod.init(row:))
        }
    }

    private func event(_ db: PostgresConnection, _ connectionID: Int64, _ kind: String, _ at: Date, cause: String?) throws {
        try db.query("INSERT INTO auth_events (connection_id, kind, occurred_at, cause) VALUES ($1, $2, $3, $4)",
                     [connectionID, kind, at, cause], label: "record auth event")
    }

    private static func record(_ row: PostgresRow) throws -> ConnectionRecord {
        var void: VoidPeriod?
        if let voidID = try row.int("void_id") {
            void = VoidPeriod(id: Int64(voidID), cause: VoidCause(rawValue: try row.string("cause") ?? "") ?? .tokenInvalidated,
                              detail: try row.string("cause_detail"), startedAt: try row.date("started_at")!, endedAt: nil)
        }
        return ConnectionRecord(
            id: Int64(try row.int("id")!), instance: try row.string("instance")!, pageID: try row.string("page_id")!,
            label: try row.string("label")!, pageName: try row.string("page_name"),
            authenticatorUserID: try row.string("authenticator_user_id")!, authenticatorName: try row.string("authenticator_name"),
            tokenCiphertext: try row.bytes(6)!, tokenKeyID: try row.string("token_key_id")!,
            tokenType: try row.string("token_type")!, scopes: parseTextArray(try row.string("scopes") ?? "{}"),
            authenticatedAt: try row.date("authenticated_at")!, userTokenExpiresAt: try row.date("user_token_expires_at"),
            facebookExpiresAt: try row.date("fb_expires_at"),
            facebookDataAccessExpiresAt: try row.date("fb_data_access_expires_at"), openVoidPeriod: void,
            verifiedAt: try row.date("verified_at"))
    }
}

/// Parses a `text[]` literal of simple words (`{a,b}`), which is all scopes ever are.
func parseTextArray(_ literal: String) -> [String] {
    literal.trimmingCharacters(in: CharacterSet(charactersIn: "{}")).split(separator: ",")
        .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
}

extension VoidPeriod {
    /// From the columns `id, cause, cause_detail, started_at, ended_at` of `void_periods`
    /// (whose CHECK admits only the causes `VoidCause` names).
    init(row: PostgresRow) throws {
        self.init(id: Int64(try row.int(0)!), cause: VoidCause(rawValue: try row.string(1)!)!, detail: try row.string(2),
                  startedAt: try row.date(3)!, endedAt: try row.date(4))
    }
}

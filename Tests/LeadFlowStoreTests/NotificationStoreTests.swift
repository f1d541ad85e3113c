import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// The outbox in Postgres: each fact's event is written with it, once; deliveries are
/// leased to one notifier at a time; the authenticator's address is sealed and follows the
/// authenticator.
@Suite struct NotificationStoreTests {
    static let day = TestDays(zero: "2026-01-05T09:00:00Z")

    let db: PostgresConnection

    let session: PostgresSession
    let connections: ConnectionStore
    let outbox: NotificationStore
    let vault: TokenVault

    init() throws {
        db = try PostgresConnection(conninfo: try TestDatabase.create("outbox"))
        session = try PostgresSession(conninfo: db.conninfo)
        try Migrator().migrate(db)
        connections = ConnectionStore(session)
        outbox = NotificationStore(session)
        vault = try TokenVault.openOrCreate(keyFile: try Repository.temporaryFolder("outbox").appendingPathComponent("token.key"))
    }

    func authenticate(at instant: Date, user: String = "42", address: String? = nil) async throws -> AuthenticationSaved {
        try await connections.saveAuthentication(Authentication(
            instance: "acme", pageID: "1001", label: "acme-main", pageName: "Acme Analytics", authenticatorUserID: user,
            authenticatorName: "Priya Shah", tokenCiphertext: try vault.seal(AccessToken("EAAB-page-token"), boundTo: "leadflow/acme/1001"),
            tokenKeyID: vault.keyID, tokenType: "PAGE", scopes: ["leads_retrieval"], facebookExpiresAt: nil,
            facebookDataAccessExpiresAt: instant.addingTimeInterval(90 * 86_400),
            notifyAddress: try address.map { try vault.seal(address: EmailAddress($0)!, instance: "acme", pageID: "1001") },
            expiresAt: instant.addingTimeInterval(90 * 86_400), reminderAt: instant.addingTimeInterval(75 * 86_400)), now: instant)
    }

    func events() async throws -> [(type: String, subject: String)] {
        try db.query("SELECT type, subject FROM notifications ORDER BY id").all.map { (try $0.string(0)!, try $0.string(1)!) }
    }

    @Test func eachFactIsOneEventWrittenWithItAndNeverTwice() async throws {
        let id = try await authenticate(at: Self.day(0)).connectionID
        #expect(try await events().map(\.type) == ["connection.created"])
        let created = try #require(try await outbox.unrouted(limit: 10).first)
        #expect(created.date("expires_at") == Self.day(90) && created.date("reminder_at") == Self.day(75))

        for _ in 0..<2 {
            try await connections.writeReminder(connectionID: id, kind: "reauthentication_due", cycleStartedAt: Self.day(0), dueAt: Self.day(75),
                                          expiresAt: Self.day(90), now: Self.day(75))
            try await connections.writeReminder(connectionID: id, kind: "expired", cycleStartedAt: Self.day(0), dueAt: Self.day(90),
                                          expiresAt: Self.day(90), now: Self.day(91))
            try await connections.openVoidPeriod(connectionID: id, cause: .tokenExpired, detail: "the authentication cycle ended",
                                           since: Self.day(90), now: Self.day(91))
        }
        #expect(try await events().map(\.type) == ["connection.created", "reminder.due", "reminder.expired", "connection.void"])

        let reauthenticated = try await authenticate(at: Self.day(100))
        #expect(reauthenticated.closedVoidPeriod != nil)
        _ = try await authenticate(at: Self.day(100))
        #expect(try await events().filter { $0.type == "connection.reauthenticated" }.count == 1, "one per cycle")

        // The backfill: leads created inside the period, now loaded, are what it recovered.
        let leads = LeadStore(session)
        let run = try await leads.startRun(kind: .backfill, pipeline: "test", host: "test", processID: 1, startedAt: Self.day(100), upperBound: Self.day(100),
                                              lease: .seconds(120))
        try await insertLeads(connectionID: id, runID: run, createdAt: [Self.day(89), Self.day(92), Self.day(95), Self.day(99.9), Self.day(101)])
        let period = try #require(reauthenticated.closedVoidPeriod)
        try await leads.markBackfilled(voidPeriodID: period.id, runID: run, at: Self.day(100.1))
        try await leads.markBackfilled(voidPeriodID: period.id, runID: run, at: Self.day(100.2))
        let all = try await outbox.unrouted(limit: 10)
        #expect(all.map(\.type) == [.connectionCreated, .reminderDue, .reminderExpired, .connectionVoid, .connectionReauthenticated,
                                    .connectionRecovered])
        let recovered = try #require(all.last)
        #expect(recovered.number("recovered") == 3, "created in [day 90, day 100)")
        let void = all[3]
        #expect(void.text("cause") == "token_expired" && void.text("remedy") == PreflightRules.remedy(for: .tokenExpired))
        #expect(void.date("since") == Self.day(90))
        let reauth = all[4]
        #expect(reauth.text("void_cause") == "token_expired" && reauth.fields["authenticator_changed"] == .flag(false))
        #expect(Set(all.map(\.eventID)).count == 6)
        let dump = try db.query("SELECT string_agg(fields::text, ' ') FROM notifications")[0].string(0) ?? ""
        #expect(!dump.contains("EAAB") && !dump.contains("@"), "no token, no address in an event")
    }

    func insertLeads(connectionID: Int64, runID: Int64, createdAt: [Date]) async throws {
        try db.query("""
            INSERT INTO archives (run_id, connection_id, path, sha256, bytes, members, window_to, created_at, verified_at)
            VALUES ($1, $2, 'archives/acme/1001/x.tar.zst', repeat('a', 64), 100, 2, $3, $3, $3)
            """, [runID, connectionID, Self.day(100)])
        for (index, created) in createdAt.enumerated() {
            try db.query("""
                INSERT INTO leads (lead_id, instance, connection_id, page_id, form_id, is_organic, created_at, email, raw_sha256,
                                   archive_id, first_run_id, last_run_id, loaded_at, updated_at)
                VALUES ($1, 'acme', $2, '1001', '2001', false, $3, 'ann@example.com', repeat('b', 64), 1, $4, $4, $5, $5)
                """, [String(3001 + index), connectionID, created, runID, Self.day(100)])
        }
    }

    @Test func theAddressIsSealedAndFollowsTheAuthenticator() async throws {
        _ = try await authenticate(at: Self.day(0), address: "priya@acme.example")
        let sealed = try #require(try await outbox.unrouted(limit: 1).first?.sealedAddress)
        #expect(try vault.open(sealed)?.value == "priya@acme.example")
        let stored = try db.query("SELECT notify_email_ciphertext::text FROM connections")[0].string(0) ?? ""
        #expect(!stored.contains(Hex.lowercase(Data("priya@acme.example".utf8))), "sealed, not in clear")
        // Bound to the connection: opened as another Page's, it fails.
        #expect(throws: (any Error).self) {
            try vault.open(SealedAddress(ciphertext: sealed.ciphertext, keyID: sealed.keyID,
                                         context: SealedAddress.context(instance: "acme", pageID: "1002")))
        }

        _ = try await authenticate(at: Self.day(10))
        #expect(try await outbox.unrouted(limit: 10).last?.sealedAddress == sealed, "the same authenticator keeps the address")
        _ = try await authenticate(at: Self.day(20), user: "77")
        #expect(try await outbox.unrouted(limit: 10).last?.sealedAddress == nil, "a new authenticator does not get the last one's mail")
    }

    @Test func aDeliveryIsLeasedToOneNotifierAndRetriedWhenDue() async throws {
        let id = try await authenticate(at: Self.day(0)).connectionID
        try await connections.writeReminder(connectionID: id, kind: "reauthentication_due", cycleStartedAt: Self.day(0), dueAt: Self.day(75),
                                      expiresAt: Self.day(90), now: Self.day(75))
        let events = try await outbox.unrouted(limit: 10)
        try await outbox.route(events.map { ($0.id, $0.type == .reminderDue ? [.webhook, .authenticatorMail] : [.webhook]) }, now: Self.day(75))
        try await outbox.route(events.map { ($0.id, [.csmMail]) }, now: Self.day(75))     // a second router finds them routed
        #expect(try await outbox.unrouted(limit: 10).isEmpty)

        let claimed = try await outbox.claimDue(now: Self.day(75), limit: 10, lease: .seconds(60))
        #expect(claimed.map(\.channel) == [.webhook, .authenticatorMail, .webhook])
        #expect(try await outbox.claimDue(now: Self.day(75), limit: 10, lease: .seconds(60)).isEmpty, "leased: another notifier gets none")

        let reminder = try #require(claimed.first { $0.notification.type == .reminderDue && $0.channel == .webhook })
        try await outbox.recordAttempts(notificationID: reminder.notification.id, channel: .webhook, attempts: 3, at: Self.day(75),
                                  delivered: false, lastError: "HTTP 500 from http://127.0.0.1:9",
                                  nextAttemptAt: Self.day(75).addingTimeInterval(240))
        #expect(try await outbox.claimDue(now: Self.day(75).addingTimeInterval(60), limit: 10, lease: .seconds(60)).isEmpty, "not due yet")
        let again = try await outbox.claimDue(now: Self.day(75).addingTimeInterval(300), limit: 10, lease: .seconds(60))
        #expect(again.map(\.attempts) == [3])
        try await outbox.recordAttempts(notificationID: reminder.notification.id, channel: .webhook, attempts: 1, at: Self.day(75.01),
                                  delivered: true, lastError: nil, nextAttemptAt: Self.day(75.01))
        #expect(try db.query("SELECT delivered_at FROM reminders")[0].date(0) == Self.day(75.01), "the reminder reached someone")

        let status = try #require(try await outbox.statuses(limit: 10).first { $0.type == .reminderDue })
        let webhook = try #require(status.deliveries.first { $0.channel == .webhook })
        #expect(webhook.state == "delivered" && webhook.attempts == 4 && webhook.lastError == "HTTP 500 from http://127.0.0.1:9")
        #expect(status.deliveries.first { $0.channel == .authenticatorMail }?.state == "pending")
    }
}

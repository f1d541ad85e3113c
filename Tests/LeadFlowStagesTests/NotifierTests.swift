import Foundation
import LeadFlowCore
import LeadFlowHTTP
import LeadFlowPostgres
import LeadFlowStages
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// The notifier with the real parts: the outbox in Postgres, the webhook over libcurl to a
/// loopback receiver, mail through a recording double (and SMTP itself in the CLI tests).
@Suite struct NotifierTests {
    static let day = TestDays(zero: "2026-01-05T09:00:00Z")
    static let secret = "whsec-\(UInt32.random(in: 0...UInt32.max))"

    /// Every message the notifier sent, in order.
    final class RecordingMail: MailTransport, @unchecked Sendable {
        private let lock = NSLock()
        private var messages: [MailMessage] = []
        var sent: [MailMessage] { lock.withLock { messages } }
        func send(_ message: MailMessage) async throws { lock.withLock { messages.append(message) } }
    }

    let db: PostgresConnection

    let session: PostgresSession
    let connections: ConnectionStore
    let vault: TokenVault
    let sleeper = RecordingSleeper()
    let mail = RecordingMail()
    let logs = LogCapture()

    init() throws {
        db = try PostgresConnection(conninfo: try TestDatabase.create("notifier"))
        session = try PostgresSession(conninfo: db.conninfo)
        try Migrator().migrate(db)
        connections = ConnectionStore(session)
        vault = try TokenVault.openOrCreate(keyFile: try Repository.temporaryFolder("notifier").appendingPathComponent("token.key"))
    }

    /// A connection (Page "Acme Analytics") whose authenticator gave `address`, and its facts
    /// of a cycle: created, the day-75 reminder, a permission revoked on day 80.
    @discardableResult
    func story(address: String?) async throws -> Int64 {
        let saved = try await connections.saveAuthentication(Authentication(
            instance: "acme", pageID: "1001", label: "acme-main", pageName: "Acme Analytics", authenticatorUserID: "42",
            authenticatorName: "Priya Shah", tokenCiphertext: try vault.seal(AccessToken("EAAB-secret-page-token"), boundTo: "leadflow/acme/1001"),
            tokenKeyID: vault.keyID, tokenType: "PAGE", scopes: ["leads_retrieval"], facebookExpiresAt: nil,
            facebookDataAccessExpiresAt: Self.day(90),
            notifyAddress: try address.map { try vault.seal(address: EmailAddress($0)!, instance: "acme", pageID: "1001") },
            expiresAt: Self.day(90), reminderAt: Self.day(75)), now: Self.day(0))
        try await connections.writeReminder(connectionID: saved.connectionID, kind: "reauthentication_due", cycleStartedAt: Self.day(0),
                                      dueAt: Self.day(75), expiresAt: Self.day(90), now: Self.day(75))
        try await connections.openVoidPeriod(connectionID: saved.connectionID, cause: .permissionRevoked, detail: "missing permission: ads_management",
                                       since: Self.day(80), now: Self.day(80))
        return saved.connectionID
    }

    func notifier(webhook url: String?, mail: Bool = false, csm: String? = nil, policy: Notifier.Policy = Notifier.Policy()) throws -> Notifier {
        let settings = NotificationSettings(webhook: url.map { .init(url: $0, secret: Self.secret) },
                                            mailFrom: mail ? EmailAddress("leadflow@integrate.example") : nil,
                                            csmEmail: csm.map { ["acme": EmailAddress($0)!] } ?? [:])
        return Notifier(repository: NotificationStore(session), settings: settings, webhook: try CurlHTTPClient(), mail: self.mail, sealer: vault,
                        sleeper: sleeper, policy: policy, logger: logs.logger())
    }

    @Test func aRefusedFirstAttemptIsRetriedAndEachEventArrivesOnceSigned() async throws {
        try await story(address: "priya@acme.example")
        let receiver = try RecordingWebhook()
        let report = try await notifier(webhook: receiver.url).deliverPending(now: Self.day(80))
        #expect(report.delivered == 3 && report.failures.isEmpty)
        #expect(receiver.requests.count == 6, "each event refused once, then accepted")
        let accepted = receiver.accepted
        #expect(accepted.compactMap(\.type) == ["connection.created", "reminder.due", "connection.void"])
        #expect(Set(accepted.compactMap(\.eventID)).count == 3)
        #expect(Set(receiver.requests.compactMap(\.eventID)) == Set(accepted.compactMap(\.eventID)), "a retry keeps the event's id")
        #expect(sleeper.waits == [.seconds(1), .seconds(1), .seconds(1)])
        for request in receiver.requests {
            #expect(try await request.signatureVerifies(secret: Self.secret))
            let text = String(decoding: request.body, as: UTF8.self)
            #expect(!text.contains("EAAB") && !text.contains("@") && !text.contains("Priya"), "no token, no address, no person")
        }
        let void = try #require(accepted.last?.object)
        #expect(void["instance"] as? String == "acme" && void["page_id"] as? String == "1001" && void["connection"] as? String == "acme-main")
        #expect(void["page_name"] as? String == "Acme Analytics" && void["cause"] as? String == "permission_revoked")
        #expect(void["remedy"] as? String == PreflightRules.remedy(for: .permissionRevoked))
        #expect(void["occurred_at"] as? String == UTCTime.iso8601(Self.day(80)))

        // The next pass, the same day: nothing new, nothing sent.
        let again = try await notifier(webhook: receiver.url).deliverPending(now: Self.day(80.5))
        #expect(again.delivered == 0 && again.routed == 0 && receiver.requests.count == 6)
        let statuses = try await NotificationStore(session).statuses(limit: 10)
        #expect(statuses.allSatisfy { $0.deliveries.map(\.state) == ["delivered"] && $0.deliveries[0].attempts == 2 })
        for status in statuses { #expect(status.deliveries.first?.lastError == "HTTP 500 from \(URLRedaction.origin(receiver.url))") }
        #expect(!logs.lines.joined().contains("priya@") && !logs.lines.joined().contains(Self.secret))
    }

    @Test func remindersAndVoidsMailTheAuthenticatorConnectionEventsTheCSM() async throws {
        try await story(address: "priya@acme.example")
        let report = try await notifier(webhook: nil, mail: true, csm: "csm@integrate.example").deliverPending(now: Self.day(80))
        #expect(report.delivered == 4 && report.failures.isEmpty)
        let sent = mail.sent.map { ($0.to.value, $0.subject) }
        #expect(sent.map(\.0) == ["csm@integrate.example", "priya@acme.example", "priya@acme.example", "csm@integrate.example"])
        #expect(sent.map(\.1) == ["Facebook Page \"Acme Analytics\" connected to acme",
                                  "Reauthenticate the Facebook Page \"Acme Analytics\" by 5 Apr 2026",
                                  "Facebook Page \"Acme Analytics\" stopped sending leads: a permission was revoked",
                                  "Facebook Page \"Acme Analytics\" stopped sending leads: a permission was revoked"])
        let reminder = mail.sent[1]
        #expect(reminder.body.hasPrefix("Hello Priya Shah,\n\nWhat happened:"))
        #expect(reminder.body.contains("By when: Sun 5 Apr 2026, 09:00 UTC."))
        #expect(reminder.body.contains("What to do: the Connector Authenticator must reauthenticate"))
        #expect(reminder.body.split(separator: "\n").allSatisfy { $0.count <= 72 || !$0.contains(" ") }, "wrapped for reading")
        let csmVoid = mail.sent[3]
        #expect(csmVoid.body.hasPrefix("Hello,\n"))
        #expect(unwrapped(csmVoid.body).contains("The Connector Authenticator is Priya Shah (Facebook user 42)."))
        #expect(unwrapped(csmVoid.body).contains("missing permission: ads_management"))
        #expect(!unwrapped(mail.sent[2].body).contains("The Connector Authenticator is"), "the authenticator is not told of themselves")
        for message in mail.sent { #expect(!message.body.contains("EAAB") && message.from.value == "leadflow@integrate.example") }
        #expect(try db.query("SELECT delivered_at FROM reminders")[0].date(0) == Self.day(80))
    }

    /// A mail's text with its line wraps undone.
    func unwrapped(_ body: String) -> String { body.replacingOccurrences(of: "\n", with: " ") }

    @Test func withoutTheAuthenticatorsAddressTheReminderGoesToTheCSM() async throws {
        try await story(address: nil)
        _ = try await notifier(webhook: nil, mail: true, csm: "csm@integrate.example").deliverPending(now: Self.day(80))
        #expect(mail.sent.map(\.to.value) == Array(repeating: "csm@integrate.example", count: 3))
        #expect(unwrapped(mail.sent[1].body).contains("LeadFlow has no e-mail address for the Connector Authenticator, Priya Shah (Facebook user 42)"))
    }

    @Test func anUnreachableReceiverLeavesEverythingPendingWithTheReason() async throws {
        try await story(address: "priya@acme.example")
        let closed = try LoopbackHTTPServer { _ in .init() }
        let url = "\(closed.baseURL)/hooks/T000/B000/secret-path"
        closed.stop()
        let first = try await notifier(webhook: url).deliverPending(now: Self.day(80))
        #expect(first.delivered == 0 && first.failures.count == 3)
        #expect(sleeper.waits.isEmpty, "a receiver that is not there is not waited for")
        let statuses = try await NotificationStore(session).statuses(limit: 10)
        let deliveries = statuses.flatMap(\.deliveries)
        #expect(deliveries.allSatisfy { $0.state == "failing" && $0.nextAttemptAt == Self.day(80).addingTimeInterval(60) })
        #expect(deliveries.map(\.attempts).sorted() == [0, 0, 1], "one connection attempt, the others not tried again in this pass")
        for delivery in deliveries {
            let error = try #require(delivery.lastError)
            #expect(error.contains("http.connect_failed") && error.contains(URLRedaction.origin(url)))
            #expect(!error.contains("secret-path"))
        }
        // Not due again before its wait; then tried again, and waits longer.
        #expect(try await notifier(webhook: url).deliverPending(now: Self.day(80).addingTimeInterval(30)).failures.isEmpty)
        let second = try await notifier(webhook: url).deliverPending(now: Self.day(80).addingTimeInterval(61))
        #expect(second.failures.count == 3)
        let retried = try await NotificationStore(session).statuses(limit: 10).flatMap(\.deliveries)
        #expect(retried.map(\.attempts).sorted() == [0, 0, 2])
        #expect(retried.allSatisfy { $0.nextAttemptAt == Self.day(80).addingTimeInterval(61 + 120) }, "2 minutes after 2 attempts")
    }

    @Test func anUnreachableSMTPServerIsSaidWithoutTheAddress() async throws {
        try await story(address: "priya@acme.example")
        let closed = try LoopbackHTTPServer { _ in .init() }
        let port = closed.port
        closed.stop()
        let smtp = try CurlMailSender(configuration: .init(url: "smtp://127.0.0.1:\(port)", connectTimeout: .seconds(2)))
        let notifier = Notifier(repository: NotificationStore(session),
                                settings: NotificationSettings(mailFrom: EmailAddress("leadflow@integrate.example"),
                                                               csmEmail: ["acme": EmailAddress("csm@integrate.example")!]),
                                webhook: nil, mail: smtp, sealer: vault, sleeper: sleeper)
        let report = try await notifier.deliverPending(now: Self.day(80))
        #expect(report.delivered == 0 && report.failures.count == 4)
        for failure in report.failures {
            #expect(failure.error.contains("http.connect_failed") && !failure.error.contains("@"))
        }
    }
}

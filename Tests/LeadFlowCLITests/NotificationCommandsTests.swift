import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// Notifications through the binary, on Facebook's real lifecycle (the Graph fake with a
/// moving clock): a webhook receiver on loopback that refuses each event's first attempt,
/// the real SMTP server scripts/test.sh starts, and receivers that are not there at all.
@Suite(.serialized) struct NotificationCommandsTests {
    static let day = TestDays(zero: "2026-03-02T08:00:00Z")
    static let secret = "whsec-cli-\(UInt32.random(in: 0...UInt32.max))"

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let authenticator = TestMailServer.uniqueAddress("priya")
    let csm = TestMailServer.uniqueAddress("csm")
    let pipeline: URL
    let leadflow: LeadFlowCLI
    /// Everything the commands printed, scanned for secrets at the end.
    var outputs: [String] = []

    init() throws {
        let scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme Analytics", forms: [
                .init(id: "2001", name: "Webinar", generate: .init(count: 220, start: "2026-03-02T09:00:00+0000", spacingSeconds: 43_200)),
            ])],
            tokens: [.user("EAAB-notify-user-one", name: "Priya Shah", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(0))),
                     .user("EAAB-notify-user-two", name: "Priya Shah", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(100)))])
        fake = try GraphFake(scenario: scenario, now: Self.day(0))
        databaseURL = try TestDatabase.create("notifycmd")
        home = try Repository.temporaryFolder("notifycmd")
        pipeline = home.appendingPathComponent("notify.yml")
        try """
            version: 1
            notifications:
              email:
                from: leadflow@integrate.example
              instances:
                acme:
                  csm_email: \(csm)
            """.write(to: pipeline, atomically: true, encoding: .utf8)
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, days: Self.day, pipeline: pipeline)
    }

    /// A port nothing listens on.
    static func closedPort() throws -> Int {
        let server = try LoopbackHTTPServer { _ in .init() }
        defer { server.stop() }
        return server.port
    }

    @Test mutating func aCycleOfEventsReachesTheWebhookAndTheMailboxesOnceEach() async throws {
        let receiver = try RecordingWebhook()
        let receivers = ["LEADFLOW_WEBHOOK_URL": receiver.url, "LEADFLOW_WEBHOOK_SECRET": Self.secret,
                         "LEADFLOW_SMTP_URL": try TestMailServer.url]
        func step(_ arguments: [String], day n: Double, input: String? = nil) async throws -> ProcessResult {
            let result = try await leadflow(arguments, day: n, input: input, extra: receivers)
            outputs += [result.stdout, result.stderr]
            return result
        }

        let connect = try await step(["connect", "--instance", "acme", "--page", "1001", "--notify-email", authenticator], day: 0,
                               input: "EAAB-notify-user-one\n")
        #expect(connect.status == 0, "\(connect.stderr)")
        let status = try await step(["status"], day: 1)
        #expect(status.stdout.contains("Acme Analytics (1001)") && status.stdout.contains("Priya Shah (42)"), "\(status.stdout)")
        let statusJSON = try JSONSerialization.jsonObject(with: Data(try await step(["status", "--json"], day: 1).stdout.utf8)) as? [String: [[String: Any]]]
        #expect(statusJSON?["connections"]?.first?["authenticator_name"] as? String == "Priya Shah")

        // Day 75: the reminder. The run delivers it (and connect's event) at its end.
        let dayOfReminder = try await step(["run", "--log-level", "trace"], day: 75)
        #expect(dayOfReminder.status == 0, "\(dayOfReminder.stderr)")
        #expect(dayOfReminder.stderr.contains("notifications: 4 delivered, 0 failing"), "\(dayOfReminder.stderr)")
        let reminder = try #require(try TestMailServer.messages(to: authenticator).first, "the day-75 reminder, addressed to the authenticator")
        #expect(reminder.mail_from == "leadflow@integrate.example")
        #expect(reminder.subject == "Reauthenticate the Facebook Page \"Acme Analytics\" by 31 May 2026")
        #expect(reminder.body.contains("By when: Sun 31 May 2026, 08:00 UTC."))
        #expect(reminder.body.hasPrefix("Hello Priya Shah,"))
        #expect(try TestMailServer.messages(to: csm).map(\.subject) == ["Facebook Page \"Acme Analytics\" connected to acme"])
        // A second run on the same day: nothing new is sent.
        let requestsBefore = receiver.requests.count
        #expect(try await step(["run"], day: 75.2).status == 0)
        #expect(receiver.requests.count == requestsBefore)
        #expect(try TestMailServer.messages(to: authenticator).count == 1)

        // Day 91: the cycle ended on day 90 (void, and the expiry told to the authenticator).
        #expect(try await step(["run"], day: 91).status == 2)
        // Day 100: a fresh token from the same person; the next run backfills the gap.
        #expect(try await step(["connect", "--instance", "acme", "--page", "1001"], day: 100, input: "EAAB-notify-user-two\n").status == 0)
        let backfill = try await step(["run"], day: 100.1)
        #expect(backfill.status == 0, "\(backfill.stderr)")
        #expect(try await step(["run"], day: 100.2).status == 0)
        #expect(try await step(["notify"], day: 100.3).status == 0)

        let accepted = receiver.accepted
        #expect(accepted.compactMap(\.type).sorted() == ["connection.created", "connection.reauthenticated", "connection.recovered",
                                                         "connection.void", "reminder.due", "reminder.expired"])
        #expect(Set(accepted.compactMap(\.eventID)).count == 6, "each event once")
        #expect(receiver.requests.count == 12, "each refused once, then accepted once: \(receiver.requests.compactMap(\.type))")
        for request in receiver.requests {
            #expect(try await request.signatureVerifies(secret: Self.secret))
            let body = String(decoding: request.body, as: UTF8.self)
            #expect(!body.contains("EAAB") && !body.contains("@") && !body.contains("Priya"), "no token, address or person: \(body)")
        }
        let recovered = try #require(accepted.first { $0.type == "connection.recovered" }?.object)
        let inGap = fake.allVisibleLeads().filter { $0.createdAt! >= Self.day(90) && $0.createdAt! < Self.day(100) }.count
        #expect(recovered["recovered"] as? Int == inGap && inGap > 0)
        #expect(recovered["page_name"] as? String == "Acme Analytics")

        #expect(try TestMailServer.messages(to: authenticator).compactMap(\.subject) == [
            "Reauthenticate the Facebook Page \"Acme Analytics\" by 31 May 2026",
            "Facebook Page \"Acme Analytics\" stopped sending leads: reauthenticate now"])
        #expect(try TestMailServer.messages(to: csm, atLeast: 4).compactMap(\.subject) == [
            "Facebook Page \"Acme Analytics\" connected to acme",
            "Facebook Page \"Acme Analytics\" stopped sending leads: the authentication expired",
            "Facebook Page \"Acme Analytics\" reauthenticated for acme",
            "Facebook Page \"Acme Analytics\": \(inGap) leads recovered after the gap"])

        let listed = try await step(["notifications", "--json"], day: 100.3)
        let rows = try #require((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: [[String: Any]]])?["notifications"])
        #expect(rows.count == 6)
        for row in rows {
            let deliveries = try #require(row["deliveries"] as? [[String: Any]])
            #expect(deliveries.allSatisfy { $0["state"] as? String == "delivered" }, "\(row)")
            #expect(deliveries.first { $0["channel"] as? String == "webhook" }?["attempts"] as? Int == 2)
        }
        let reminders = try await step(["reminders", "--json"], day: 100.3)
        #expect(!reminders.stdout.contains("\"delivered_at\" : null"), "each reminder reached someone")

        for text in outputs {
            #expect(!text.contains(authenticator) && !text.contains(Self.secret) && !text.contains("EAAB-notify"))
            #expect(!text.contains("/hooks/"), "the webhook's path can be a secret")
        }
    }

    @Test mutating func receiversThatAreDownNeverFailARunAndTheListingSaysWhy() async throws {
        let port = try Self.closedPort()
        let down = ["LEADFLOW_WEBHOOK_URL": "http://127.0.0.1:\(port)/hooks/secret-path", "LEADFLOW_WEBHOOK_SECRET": Self.secret,
                    "LEADFLOW_SMTP_URL": "smtp://127.0.0.1:\(port)"]
        #expect(try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--notify-email", authenticator], day: 0,
                             input: "EAAB-notify-user-one\n").status == 0)
        let run = try await leadflow(["run"], day: 75, extra: down)
        #expect(run.status == 0, "a healthy run stays 0 whatever the receivers do: \(run.stderr)")
        #expect(run.stderr.contains("notifications: 0 delivered, 4 failing"), "\(run.stderr)")

        let table = try await leadflow(["notifications"], day: 75)
        #expect(table.status == 0)
        #expect(table.stdout.contains("failing") && table.stdout.contains("http.connect_failed"), "\(table.stdout)")
        let json = try await leadflow(["notifications", "--json"], day: 75).stdout
        let rows = try #require((try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: [[String: Any]]])?["notifications"])
        #expect(rows.map { $0["type"] as? String } == ["reminder.due", "connection.created"])
        for delivery in rows.flatMap({ $0["deliveries"] as? [[String: Any]] ?? [] }) {
            #expect(delivery["state"] as? String == "failing")
            #expect((delivery["last_error"] as? String)?.contains("connect_failed") == true)
        }
        for text in [run.stderr, table.stdout, json] {
            #expect(!text.contains("secret-path") && !text.contains(Self.secret) && !text.contains(authenticator))
        }
        // `notify` on its own says the same with exit 1; the events wait.
        let notify = try await leadflow(["notify"], day: 76, extra: down)
        #expect(notify.status == 1 && notify.stderr.contains("failing"))

        // A webhook without its secret: notify refuses (64); a run goes on and says why.
        let unsigned = ["LEADFLOW_WEBHOOK_URL": "http://127.0.0.1:\(port)/hooks"]
        let refused = try await leadflow(["notify"], day: 77, extra: unsigned)
        #expect(refused.status == 64 && refused.stderr.contains("LEADFLOW_WEBHOOK_SECRET is needed"), "\(refused.stderr)")
        let runAnyway = try await leadflow(["run"], day: 77, extra: unsigned)
        #expect(runAnyway.status == 0 && runAnyway.stderr.contains("notifications not delivered: LEADFLOW_WEBHOOK_SECRET"))
    }

    @Test func aMalformedURLInThePipelineFileIsAFileLineKeyError() async throws {
        let bad = home.appendingPathComponent("bad.yml")
        try "version: 1\nnotifications:\n  webhook:\n    url: hooks.example.com/leadflow\n".write(to: bad, atomically: true, encoding: .utf8)
        let run = try await leadflow(["run"], day: 1, pipeline: bad)
        #expect(run.status == 64)
        #expect(run.stderr.contains("\(bad.path):4: notifications.webhook.url: must be an http:// or https:// URL"), "\(run.stderr)")
        let badSMTP = home.appendingPathComponent("bad-smtp.yml")
        try "version: 1\nnotifications:\n  email:\n    smtp_url: mail.example.com:25\n".write(to: badSMTP, atomically: true, encoding: .utf8)
        let notify = try await leadflow(["notify"], day: 1, pipeline: badSMTP)
        #expect(notify.status == 64 && notify.stderr.contains("\(badSMTP.path):4: notifications.email.smtp_url:"), "\(notify.stderr)")
        let env = try await leadflow(["notify"], day: 1, extra: ["LEADFLOW_SMTP_URL": "mail.example.com"])
        #expect(env.status == 64 && env.stderr.contains("LEADFLOW_SMTP_URL must be an smtp:// or smtps:// URL"), "\(env.stderr)")
        let address = try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--notify-email", "priya at acme"], day: 1,
                                   input: "EAAB-notify-user-one\n")
        #expect(address.status == 64 && address.stderr.contains("--notify-email must be one e-mail address") && !address.stderr.contains("priya at"))
    }
}

import Foundation
import LeadFlowCore
import Testing

/// The pure parts of notifications: who hears of what, addresses, the mail's text form,
/// and what an error may show of a URL.
@Suite struct NotificationsTests {
    let all = NotificationRouting.Reach(webhook: true, mail: true, authenticatorAddress: true, csmAddress: true)

    @Test func remindersAndVoidsGoToTheAuthenticatorConnectionEventsToTheCSM() {
        let due = NotificationFacts.reminderDue(cycleStartedAt: Date(timeIntervalSince1970: 0), dueAt: Date(timeIntervalSince1970: 75 * 86_400),
                                                expiresAt: Date(timeIntervalSince1970: 90 * 86_400))
        #expect(NotificationRouting.channels(for: .reminderDue, fields: due.fields, reach: all) == [.webhook, .authenticatorMail])
        let revoked = NotificationFacts.connectionVoid(voidPeriodID: 7, cause: .permissionRevoked, detail: "missing permission: ads_management",
                                                       since: Date(timeIntervalSince1970: 0))
        #expect(NotificationRouting.channels(for: .connectionVoid, fields: revoked.fields, reach: all) == [.webhook, .authenticatorMail, .csmMail])
        // The end of a cycle reaches the authenticator as reminder.expired; the void tells the CSM.
        let expired = NotificationFacts.connectionVoid(voidPeriodID: 8, cause: .tokenExpired, detail: "the authentication cycle ended",
                                                       since: Date(timeIntervalSince1970: 0))
        #expect(NotificationRouting.channels(for: .connectionVoid, fields: expired.fields, reach: all) == [.webhook, .csmMail])
        for type in [NotificationType.connectionCreated, .connectionReauthenticated, .connectionRecovered] {
            #expect(NotificationRouting.channels(for: type, fields: [:], reach: all) == [.webhook, .csmMail])
        }
    }

    @Test func aReminderWithoutTheAuthenticatorsAddressGoesToTheCSM() {
        var reach = all
        reach.authenticatorAddress = false
        #expect(NotificationRouting.channels(for: .reminderDue, fields: [:], reach: reach) == [.webhook, .csmMail])
        reach.csmAddress = false
        reach.webhook = false
        #expect(NotificationRouting.channels(for: .reminderExpired, fields: [:], reach: reach).isEmpty, "nothing configured: no channel")
        reach = all
        reach.mail = false
        #expect(NotificationRouting.channels(for: .connectionVoid, fields: [:], reach: reach) == [.webhook])
    }

    @Test func factsAreOncePerCycleOrPeriodAndHoldNoSecret() throws {
        let cycle = UTCTime.parse("2026-01-05T09:00:00Z")!
        let due = NotificationFacts.reminderDue(cycleStartedAt: cycle, dueAt: cycle.addingTimeInterval(75 * 86_400),
                                                expiresAt: cycle.addingTimeInterval(90 * 86_400))
        #expect(due.subject == "2026-01-05T09:00:00Z")
        #expect(due.fieldsJSON == #"{"cycle_started_at":"2026-01-05T09:00:00Z","due_at":"2026-03-21T09:00:00Z","expires_at":"2026-04-05T09:00:00Z"}"#)
        #expect(NotificationFacts.fields(json: due.fieldsJSON) == due.fields)
        let void = NotificationFacts.connectionVoid(voidPeriodID: 3, cause: .leadAccessLost, detail: "the user cannot access leads", since: cycle)
        #expect(void.subject == "void-period-3")
        #expect(void.fields["remedy"] == .text(PreflightRules.remedy(for: .leadAccessLost)))
        let recovered = NotificationFacts.connectionRecovered(VoidPeriod(id: 3, cause: .leadAccessLost, detail: nil, startedAt: cycle,
                                                                         endedAt: cycle.addingTimeInterval(86_400)), recovered: 12)
        #expect(recovered.subject == "void-period-3")
        #expect(NotificationFacts.fields(json: recovered.fieldsJSON)["recovered"] == .number(12))
        let reauth = NotificationFacts.connectionReauthenticated(authenticatedAt: cycle, expiresAt: nil, reminderAt: nil, closed: nil,
                                                                 authenticatorChanged: true)
        #expect(NotificationFacts.fields(json: reauth.fieldsJSON)["authenticator_changed"] == .flag(true))
    }

    @Test func addressesAreCheckedAndNeverPrinted() {
        #expect(EmailAddress("priya@acme.example")?.value == "priya@acme.example")
        #expect(EmailAddress(" priya@acme.example ")?.value == "priya@acme.example")
        for bad in ["", "priya", "@acme.example", "priya@", "a@b@c", "priya@acme..example", "priya @acme.example",
                    "priya@acme.example\r\nRCPT TO:<x@y>", "<priya@acme.example>", "priya@acme.example,x@y.example"] {
            #expect(EmailAddress(bad) == nil, "\(bad.debugDescription)")
        }
        let address = EmailAddress("priya@acme.example")!
        #expect("\(address)" == "<address>" && String(reflecting: address) == "<address>")
    }

    @Test func aMailIsPlainTextWithNoWayToAddAHeader() throws {
        let message = MailMessage(from: EmailAddress("leadflow@integrate.example")!, to: EmailAddress("priya@acme.example")!,
                                  subject: "Reauthenticate \"Acme\"\r\nBcc: evil@example.com", body: "Line one\nLine two\n.\n",
                                  messageID: "abc.mail-authenticator@leadflow", date: UTCTime.parse("2026-05-31T08:00:00Z")!)
        let text = String(decoding: message.rfc5322(), as: UTF8.self)
        let headers = text.components(separatedBy: "\r\n\r\n")[0].components(separatedBy: "\r\n")
        #expect(headers.contains("Subject: Reauthenticate \"Acme\"  Bcc: evil@example.com"))
        #expect(!headers.contains { $0.hasPrefix("Bcc:") })
        #expect(headers.contains("Date: Sun, 31 May 2026 08:00:00 +0000"))
        #expect(headers.contains("To: <priya@acme.example>"))
        #expect(headers.contains("Content-Type: text/plain; charset=UTF-8"))
        #expect(text.hasSuffix("\r\n\r\nLine one\r\nLine two\r\n.\r\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "CRLF line ends only")

        let french = MailMessage(from: EmailAddress("a@b.example")!, to: EmailAddress("c@d.example")!, subject: "Page « Café Société »",
                                 body: "", messageID: "x@y", date: Date(timeIntervalSince1970: 0))
        let subject = String(decoding: french.rfc5322(), as: UTF8.self).components(separatedBy: "\r\n").first { $0.hasPrefix("Subject:") }!
        #expect(subject.hasPrefix("Subject: =?UTF-8?B?"))
        let encoded = subject.dropFirst("Subject: =?UTF-8?B?".count).dropLast(2)
        #expect(String(decoding: Data(base64Encoded: String(encoded))!, as: UTF8.self) == "Page « Café Société »")
    }

    @Test func instantsForPeople() {
        #expect(UTCTime.readable(UTCTime.parse("2026-05-31T08:00:00Z")!) == "Sun 31 May 2026, 08:00 UTC")
        #expect(UTCTime.rfc5322(UTCTime.parse("1970-01-01T00:00:00Z")!) == "Thu, 1 Jan 1970 00:00:00 +0000")
        #expect(UTCTime.readable(UTCTime.parse("1969-12-31T23:59:00Z")!) == "Wed 31 Dec 1969, 23:59 UTC")
    }

    @Test func errorsLoseAddressesAndURLsTheirSecrets() {
        #expect(AddressRedaction.redact("RCPT failed: 550 5.1.1 <priya@acme.example>: Recipient address rejected")
            == "RCPT failed: 550 5.1.1 <address>: Recipient address rejected")
        #expect(AddressRedaction.redact("login denied for user priya@acme.example") == "login denied for user <address>")
        #expect(AddressRedaction.redact("no address here") == "no address here")
        #expect(URLRedaction.origin("https://user:pw@hooks.example.com:8443/services/T000/B000/XXXX?token=1") == "https://hooks.example.com:8443")
        #expect(URLRedaction.origin("not a url") == "<url>")
    }

    @Test func notificationURLsAreCheckedWhereTheyEnter() {
        #expect(NotificationURLs.webhookProblem("https://hooks.example.com/leadflow") == nil)
        #expect(NotificationURLs.webhookProblem("ftp://hooks.example.com") != nil)
        #expect(NotificationURLs.webhookProblem("https:///no-host") != nil)
        #expect(NotificationURLs.webhookProblem("hooks.example.com/leadflow") != nil)
        #expect(NotificationURLs.smtpProblem("smtps://smtp.example.com:465") == nil)
        #expect(NotificationURLs.smtpProblem("smtp://127.0.0.1:2525") == nil)
        #expect(NotificationURLs.smtpProblem("smtp://user:secret@smtp.example.com")?.contains("LEADFLOW_SMTP_USER") == true)
        #expect(NotificationURLs.smtpProblem("https://smtp.example.com") != nil)
        let settings = NotificationSettings(webhook: .init(url: "https://hooks.example.com/secret-path", secret: "s3cr3t"))
        #expect(!"\(settings)".contains("secret-path") && !"\(settings)".contains("s3cr3t"))
    }
}

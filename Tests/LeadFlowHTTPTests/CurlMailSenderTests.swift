import Foundation
import LeadFlowCore
import LeadFlowHTTP
import LeadFlowTestSupport
import Testing

/// SMTP through libcurl against a real SMTP server on loopback (aiosmtpd, started by
/// scripts/test.sh).
@Suite struct CurlMailSenderTests {
    func message(to recipient: String, subject: String = "Reauthenticate \"Acme Analytics\"", body: String) -> MailMessage {
        MailMessage(from: EmailAddress("leadflow@integrate.example")!, to: EmailAddress(recipient)!, subject: subject, body: body,
                    messageID: "\(UUID().uuidString)@leadflow", date: UTCTime.parse("2026-05-31T08:00:00Z")!)
    }

    @Test func aMessageArrivesAsSentWithItsEnvelope() async throws {
        let sender = try CurlMailSender(configuration: .init(url: try TestMailServer.url))
        let recipient = TestMailServer.uniqueAddress("priya")
        // A line holding only a dot would end DATA early if curl did not dot-stuff it.
        try await sender.send(message(to: recipient, subject: "Page « Café Société »", body: "What happened: …\n.\n..\nBy when: now.\n"))
        let received = try #require(try TestMailServer.messages(to: recipient).first)
        #expect(received.mail_from == "leadflow@integrate.example")
        #expect(received.rcpt_tos == [recipient])
        #expect(received.body == "What happened: …\n.\n..\nBy when: now.\n")
        #expect(received.subject?.hasPrefix("=?UTF-8?B?") == true)
        #expect(received.data.contains("Content-Type: text/plain; charset=UTF-8"))
    }

    @Test func manyMessagesOneAfterAnother() async throws {
        let sender = try CurlMailSender(configuration: .init(url: try TestMailServer.url))
        let recipient = TestMailServer.uniqueAddress("many")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<5 {
                group.addTask { try await sender.send(message(to: recipient, body: "message \(index)\n")) }
            }
            try await group.waitForAll()
        }
        #expect(try TestMailServer.messages(to: recipient, atLeast: 5).count == 5)
    }

    @Test func anUnreachableServerFailsFastWithoutTheAddress() async throws {
        // A port nothing listens on: the server's own, once the listener is gone.
        let closed = try LoopbackHTTPServer { _ in .init() }
        let port = closed.port
        closed.stop()
        let sender = try CurlMailSender(configuration: .init(url: "smtp://127.0.0.1:\(port)", username: "mailer", password: "hunter2-secret",
                                                             connectTimeout: .seconds(2)))
        let error = await #expect(throws: CurlError.self) {
            try await sender.send(message(to: "priya@acme.example", body: "x\n"))
        }
        #expect(error?.code == "http.connect_failed")
        #expect(error?.disposition == .retry)
        let text = error.map { "\($0)" } ?? ""
        #expect(!text.contains("priya@acme.example") && !text.contains("hunter2-secret"))
        #expect(text.contains("smtp://127.0.0.1:\(port)"))
    }

    @Test func starttlsIsRequiredWhenAPasswordWouldCross() async throws {
        // aiosmtpd on loopback offers no STARTTLS: with a login, `auto` refuses to send in clear.
        let sender = try CurlMailSender(configuration: .init(url: try TestMailServer.url, username: "mailer", password: "hunter2-secret"))
        let recipient = TestMailServer.uniqueAddress("tls")
        let error = await #expect(throws: CurlError.self) {
            try await sender.send(message(to: recipient, body: "x\n"))
        }
        #expect(!(error.map { "\($0)" } ?? "").contains("hunter2-secret"))
        #expect(try TestMailServer.messages(to: recipient, timeout: .milliseconds(200)).isEmpty)
    }
}

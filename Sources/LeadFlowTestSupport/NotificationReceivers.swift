import Foundation
import LeadFlowCore
import LeadFlowGraphFake

/// The real SMTP server `scripts/test.sh` starts (Debian's python3-aiosmtpd on loopback),
/// which writes each message it accepts as one JSON file in a folder.
///
/// Tests that need it fail, never skip, when it is missing, like `TestDatabase`.
public enum TestMailServer {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "LEADFLOW_TEST_SMTP_PORT is not set: run the tests with `bash scripts/test.sh`, which starts an SMTP server on loopback"
        }
    }

    /// One message as the server received it.
    public struct Message: Sendable, Decodable {
        public let mail_from: String
        public let rcpt_tos: [String]
        /// Headers and body as sent (CRLF line ends, dot-stuffing undone).
        public let data: String

        public var subject: String? {
            data.components(separatedBy: "\r\n").first { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)) }
        }

        public var body: String {
            guard let range = data.range(of: "\r\n\r\n") else { return "" }
            return String(data[range.upperBound...]).replacingOccurrences(of: "\r\n", with: "\n")
        }
    }

    public static func port() throws -> Int {
        guard let text = ProcessInfo.processInfo.environment["LEADFLOW_TEST_SMTP_PORT"], let port = Int(text) else { throw Missing() }
        return port
    }

    public static var url: String {
        get throws { "smtp://127.0.0.1:\(try port())" }
    }

    /// Every message received so far (all tests share the server: filter by recipient).
    public static func messages() throws -> [Message] {
        guard let folder = ProcessInfo.processInfo.environment["LEADFLOW_TEST_SMTP_FOLDER"] else { throw Missing() }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return try files.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted().map { name in
            try JSONDecoder().decode(Message.self, from: Data(contentsOf: URL(fileURLWithPath: folder).appendingPathComponent(name)))
        }
    }

    /// The messages addressed to `recipient`, waiting up to `timeout` for at least `count`.
    public static func messages(to recipient: String, atLeast count: Int = 1, timeout: Duration = .seconds(5)) throws -> [Message] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = try messages().filter { $0.rcpt_tos.contains(recipient) }
            if found.count >= count || ContinuousClock.now >= deadline { return found }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// An address no other test uses, so each test finds its own messages.
    public static func uniqueAddress(_ name: String) -> String {
        "\(name)-\(UInt32.random(in: 0...UInt32.max))@example.test"
    }
}

/// A webhook receiver on loopback that records every request and answers 500 to the first
/// attempt of each event id (then 2xx), as a receiver that was briefly down would.
public final class RecordingWebhook: @unchecked Sendable {
    public struct Received: Sendable {
        public let body: Data
        public let signature: String?
        public let status: Int

        /// The body's `id`.
        public var eventID: String? { (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["id"] as? String }
        public var type: String? { (try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["type"] as? String }
        public var object: [String: Any] { ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:] }
    }

    private let lock = NSLock()
    private var received: [Received] = []
    private var seen: Set<String> = []
    private var server: LoopbackHTTPServer?
    public let refuseFirstAttempt: Bool

    public init(refuseFirstAttempt: Bool = true) throws {
        self.refuseFirstAttempt = refuseFirstAttempt
        server = try LoopbackHTTPServer { [weak self] request in
            guard let self else { return .init(status: 503) }
            return self.handle(request)
        }
    }

    /// The URL to configure, with a path that stands for a secret one (Slack-style).
    public var url: String { "\(server!.baseURL)/hooks/secret-path-\(ObjectIdentifier(self).hashValue & 0xFFFF)" }

    public var requests: [Received] { lock.withLock { received } }
    /// The requests answered with a 2xx: one per event delivered.
    public var accepted: [Received] { requests.filter { (200..<300).contains($0.status) } }

    public func stop() { server?.stop() }

    private func handle(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Response {
        lock.withLock {
            let id = (try? JSONSerialization.jsonObject(with: request.body) as? [String: Any])?["id"] as? String ?? ""
            let first = seen.insert(id).inserted
            let status = refuseFirstAttempt && first ? 500 : 204
            received.append(Received(body: request.body, signature: request.header("X-LeadFlow-Signature"), status: status))
            return .init(status: status)
        }
    }
}

extension RecordingWebhook.Received {
    /// Whether `X-LeadFlow-Signature` is `sha256=<HMAC-SHA256 of the body under secret>`,
    /// recomputed by Python's own hmac module (an implementation independent of LeadFlow's).
    public func signatureVerifies(secret: String) async throws -> Bool {
        let script = "import hmac, hashlib, sys; print('sha256=' + hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())"
        let result = try await runProgram("/usr/bin/python3", ["-c", script, secret], input: body)
        return result.status == 0 && signature == result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

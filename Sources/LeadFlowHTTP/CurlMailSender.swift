import CCurl
import Foundation
import LeadFlowCore
import Logging

/// Mail over SMTP through libcurl: `smtp://` (STARTTLS as configured) or `smtps://` (TLS
/// from the first byte), with optional login. One message per transfer, one transfer at a
/// time, on a thread this sender owns: notifications are a handful per run, and curl's
/// blocking `curl_easy_perform` must stay off Swift's cooperative pool.
///
/// Verbose mode is never switched on: it would print the password and the recipients.
public final class CurlMailSender: MailTransport {
    public struct Configuration: Sendable, CustomStringConvertible {
        /// `smtp://host[:port][/helo-domain]` or `smtps://…`; no credentials in it.
        public var url: String
        public var username: String?
        public var password: String?
        public var startTLS: SMTPStartTLS
        public var connectTimeout: Duration
        /// For the whole exchange, connection and DATA included.
        public var timeout: Duration

        public init(url: String, username: String? = nil, password: String? = nil, startTLS: SMTPStartTLS = .auto,
                    connectTimeout: Duration = .seconds(10), timeout: Duration = .seconds(30)) {
            self.url = url
            self.username = username
            self.password = password
            self.startTLS = startTLS
            self.connectTimeout = connectTimeout
            self.timeout = timeout
        }

        /// What curl is told of TLS (`CURLOPT_USE_SSL`). `smtps://` is TLS whatever it says.
        var useSSL: curl_usessl {
            switch startTLS {
            case .required: return CURLUSESSL_ALL
            case .off: return CURLUSESSL_NONE
            // A password never crosses in clear; a relay without login may lack TLS.
            case .auto: return username == nil ? CURLUSESSL_TRY : CURLUSESSL_ALL
            }
        }

        public var description: String {
            "\(URLRedaction.origin(url)) (starttls \(startTLS.rawValue), \(username == nil ? "no login" : "with login"))"
        }
    }

    private let worker: MailWorker

    public init(configuration: Configuration, logger: Logger = Logger(label: "leadflow.mail")) throws {
        try check(curlGlobalInitResult, "curl_global_init")
        worker = MailWorker(configuration: configuration, logger: logger)
    }

    deinit {
        worker.stop()
    }

    /// - SeeAlso: https://curl.se/libcurl/c/smtp-mail.html
    public func send(_ message: MailMessage) async throws {
        try Task.checkCancellation()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            worker.enqueue(MailJob(message: message, continuation: continuation))
        }
    }
}

/// One message waiting for the mail thread.
struct MailJob {
    let message: MailMessage
    let continuation: CheckedContinuation<Void, any Error>
}

/// The message's bytes and how far curl has read them (CURLOPT_READFUNCTION's state).
final class MailPayload {
    let bytes: [UInt8]
    var offset = 0

    init(_ data: Data) {
        bytes = Array(data)
    }
}

/// The thread that owns every curl handle of the mail sender, and its queue.
final class MailWorker: @unchecked Sendable {
    private let configuration: CurlMailSender.Configuration
    private let logger: Logger
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [MailJob] = []
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    init(configuration: CurlMailSender.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "leadflow.mail"
        thread.start()
    }

    func enqueue(_ job: MailJob) {
        condition.withLock {
            if stopping {
                job.continuation.resume(throwing: CancellationError())
            } else {
                jobs.append(job)
                condition.signal()
            }
        }
    }

    /// Fails what is still queued, lets the current transfer end, and waits for the thread.
    func stop() {
        condition.withLock {
            stopping = true
            condition.signal()
        }
        finished.wait()
    }

    private func run() {
        while true {
            let next: MailJob? = condition.withLock {
                while jobs.isEmpty && !stopping { condition.wait() }
                if stopping {
                    for job in jobs { job.continuation.resume(throwing: CancellationError()) }
                    jobs.removeAll()
                    return nil
                }
                return jobs.removeFirst()
            }
            guard let job = next else {
                finished.signal()
                return
            }
            do {
                try perform(job.message)
                job.continuation.resume()
            } catch {
                job.continuation.resume(throwing: error)
            }
        }
    }

    /// - SeeAlso: https://curl.se/libcurl/c/curl_easy_perform.html
    private func perform(_ message: MailMessage) throws(CurlError) {
        let shownURL = URLRedaction.origin(configuration.url)
        guard let easy = curl_easy_init() else {
            throw CurlError(kind: .initialisation, function: "curl_easy_init", message: "returned NULL", url: shownURL)
        }
        defer { curl_easy_cleanup(easy) }
        // The list is freed after the handle is done with it (defers run in reverse order).
        let recipients = curl_slist_append(nil, "<\(message.to.value)>")
        defer { curl_slist_free_all(recipients) }
        // Read by the callback during curl_easy_perform only; this frame outlives it.
        let payload = MailPayload(message.rfc5322())
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        func set(_ option: CURLoption, _ value: Int, _ name: String) throws(CurlError) {
            try check(ccurl_easy_setopt_long(easy, option, value), "curl_easy_setopt(\(name))", url: shownURL)
        }
        func set(_ option: CURLoption, _ value: String, _ name: String) throws(CurlError) {
            // curl copies string options, so the Swift string may go after the call.
            try check(ccurl_easy_setopt_string(easy, option, value), "curl_easy_setopt(\(name))", url: shownURL)
        }
        try set(CURLOPT_URL, configuration.url, "CURLOPT_URL")
        try set(CURLOPT_PROTOCOLS_STR, "smtp,smtps", "CURLOPT_PROTOCOLS_STR")
        try set(CURLOPT_NOSIGNAL, 1, "CURLOPT_NOSIGNAL")
        try set(CURLOPT_VERBOSE, 0, "CURLOPT_VERBOSE")
        try set(CURLOPT_CONNECTTIMEOUT_MS, max(1, configuration.connectTimeout.milliseconds), "CURLOPT_CONNECTTIMEOUT_MS")
        try set(CURLOPT_TIMEOUT_MS, max(1, configuration.timeout.milliseconds), "CURLOPT_TIMEOUT_MS")
        try set(CURLOPT_USE_SSL, Int(configuration.useSSL.rawValue), "CURLOPT_USE_SSL")
        if let username = configuration.username { try set(CURLOPT_USERNAME, username, "CURLOPT_USERNAME") }
        if let password = configuration.password { try set(CURLOPT_PASSWORD, password, "CURLOPT_PASSWORD") }
        try set(CURLOPT_MAIL_FROM, "<\(message.from.value)>", "CURLOPT_MAIL_FROM")
        try check(ccurl_easy_setopt_slist(easy, CURLOPT_MAIL_RCPT, recipients), "curl_easy_setopt(CURLOPT_MAIL_RCPT)", url: shownURL)
        try set(CURLOPT_UPLOAD, 1, "CURLOPT_UPLOAD")
        let context = Unmanaged.passUnretained(payload).toOpaque()
        // CURLOPT_READFUNCTION has the write callback's C type (buffer, size, count,
        // userdata), so the existing typed shim serves both.
        try check(ccurl_easy_setopt_callback(easy, CURLOPT_READFUNCTION, readCallback), "curl_easy_setopt(CURLOPT_READFUNCTION)",
                  url: shownURL)
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_READDATA, context), "curl_easy_setopt(CURLOPT_READDATA)", url: shownURL)

        let code = errorBuffer.withUnsafeMutableBufferPointer { buffer -> CURLcode in
            // The buffer outlives the transfer: it is set and read inside this closure.
            guard ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, buffer.baseAddress) == CURLE_OK else { return CURLE_FAILED_INIT }
            defer { _ = ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, nil) }
            return curl_easy_perform(easy)
        }
        guard code == CURLE_OK else {
            let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            // The server's refusal can quote the recipient ("550 <a@b.example>: unknown").
            throw CurlError(function: "curl_easy_perform", code: code, detail: AddressRedaction.redact(detail), url: shownURL)
        }
        logger.debug("mail sent", metadata: ["mail.server": "\(shownURL)"])
    }
}

/// CURLOPT_READFUNCTION: the next bytes of the message; 0 ends it.
private let readCallback: ccurl_data_callback = { buffer, size, count, context in
    let payload = Unmanaged<MailPayload>.fromOpaque(context!).takeUnretainedValue()
    let length = min(size * count, payload.bytes.count - payload.offset)
    guard length > 0, let buffer else { return 0 }
    payload.bytes.withUnsafeBufferPointer { source in
        UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + payload.offset, byteCount: length)
    }
    payload.offset += length
    return length
}

import Foundation

/// An e-mail address, checked where it enters (`connect --notify-email`, the pipeline's
/// `csm_email`, `LEADFLOW_NOTIFY_FROM`). It is personal data: printing or logging it shows
/// `<address>`, and only `value` gives the text, to the code that addresses a message.
public struct EmailAddress: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String

    /// A bare `local@domain`: one `@`, no space, no control character, nothing that could
    /// end an SMTP command or a header (`<>,;:"()[]\`), at most 254 bytes (RFC 5321).
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, trimmed.utf8.count <= 254,
              !parts[1].hasPrefix("."), !parts[1].hasSuffix("."), !parts[1].contains(".."),
              trimmed.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && !Self.forbidden.contains($0) })
        else { return nil }
        value = trimmed
    }

    private static let forbidden = Set("<>,;:\"()[]\\".unicodeScalars)

    public var description: String { "<address>" }
    public var debugDescription: String { "<address>" }
}

/// A plain-text message, ready to be rendered as RFC 5322 text.
public struct MailMessage: Sendable, Equatable {
    public var from: EmailAddress
    /// The display name beside `from` (`LeadFlow`).
    public var fromName: String
    public var to: EmailAddress
    public var subject: String
    /// Lines of text; rendered with CRLF.
    public var body: String
    /// Unique per event and channel: a redelivered message keeps it, so mail clients and
    /// servers that deduplicate on Message-ID show it once.
    public var messageID: String
    public var date: Date

    public init(from: EmailAddress, fromName: String = "LeadFlow", to: EmailAddress, subject: String, body: String,
                messageID: String, date: Date) {
        self.from = from
        self.fromName = fromName
        self.to = to
        self.subject = subject
        self.body = body
        self.messageID = messageID
        self.date = date
    }

    /// The message as SMTP's DATA carries it: headers, a blank line, the body, CRLF line
    /// ends, UTF-8 (8bit). Header values lose control characters (a Page's name cannot add
    /// a header), and non-ASCII ones are RFC 2047 encoded. The SMTP client does the
    /// dot-stuffing.
    public func rfc5322() -> Data {
        var lines = [
            "From: \(Self.header(fromName)) <\(from.value)>",
            "To: <\(to.value)>",
            "Subject: \(Self.header(subject))",
            "Date: \(UTCTime.rfc5322(date))",
            "Message-ID: <\(Self.clean(messageID))>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=UTF-8",
            "Content-Transfer-Encoding: 8bit",
            "Auto-Submitted: auto-generated",
            "",
        ]
        // RFC 5322 caps a line at 998 octets; the renderer wraps prose well below that.
        var bodyLines = body.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        if bodyLines.last?.isEmpty == true { bodyLines.removeLast() }     // the body's own last line end
        lines += bodyLines.map { String($0.prefix(900)) }
        return Data(lines.joined(separator: "\r\n").utf8 + Array("\r\n".utf8))
    }

    /// Control characters (CR and LF above all) become spaces.
    static func clean(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }

    /// ASCII as it is; anything else as one or more `=?UTF-8?B?…?=` words (RFC 2047), each
    /// under 76 characters, split on character boundaries.
    static func header(_ text: String) -> String {
        let cleaned = clean(text)
        guard !cleaned.unicodeScalars.allSatisfy(\.isASCII) else { return cleaned }
        var words: [String] = []
        var chunk = ""
        for character in cleaned {
            if (chunk + String(character)).utf8.count > 45 {
                words.append(chunk)
                chunk = ""
            }
            chunk.append(character)
        }
        if !chunk.isEmpty { words.append(chunk) }
        return words.map { "=?UTF-8?B?\(Data($0.utf8).base64EncodedString())?=" }.joined(separator: "\r\n ")
    }
}

/// Anything that can send a `MailMessage`: SMTP over libcurl in production, a double in
/// tests. A thrown error's `description` must hold no address and no password.
public protocol MailTransport: Sendable {
    func send(_ message: MailMessage) async throws
}

/// Keeps e-mail addresses out of text that will be stored or shown: an SMTP server's
/// refusal often quotes the recipient (`550 5.1.1 <a@b.example>: user unknown`).
public enum AddressRedaction {
    /// Every run of address characters around an `@` becomes `<address>`.
    public static func redact(_ text: String) -> String {
        guard text.contains("@") else { return text }
        var out = ""
        var word = ""
        func flush() {
            out += word.contains("@") ? "<address>" : word
            word = ""
        }
        for character in text {
            if character.isWhitespace || "<>,;:\"()[]'".contains(character) {
                flush()
                out.append(character)
            } else {
                word.append(character)
            }
        }
        flush()
        return out.replacingOccurrences(of: "<<address>>", with: "<address>")
    }
}

extension UTCTime {
    private static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"] // 1970-01-01 was a Thursday
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private static func weekday(_ date: Date) -> String {
        let days = microseconds(date).floorDivided(by: 86_400_000_000)
        return weekdays[Int(((days % 7) + 7) % 7)]
    }

    private static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// `Sun, 31 May 2026 08:00:00 +0000`: a mail's Date header.
    public static func rfc5322(_ date: Date) -> String {
        let f = fields(date)
        return "\(weekday(date)), \(f.day) \(months[f.month - 1]) \(f.year) \(two(f.hour)):\(two(f.minute)):\(two(f.second)) +0000"
    }

    /// `Sun 31 May 2026, 08:00 UTC`: an instant for people, in mails.
    public static func readable(_ date: Date) -> String {
        let f = fields(date)
        return "\(weekday(date)) \(f.day) \(months[f.month - 1]) \(f.year), \(two(f.hour)):\(two(f.minute)) UTC"
    }
}

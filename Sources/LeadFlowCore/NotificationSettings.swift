import Foundation

/// How the SMTP connection is secured when the URL is `smtp://` (`smtps://` is TLS from
/// the first byte whatever this says).
public enum SMTPStartTLS: String, Sendable, Equatable, CaseIterable {
    /// Required when a user name is configured (a password never crosses in clear), used
    /// when offered otherwise (a local relay on port 25 often has no TLS).
    case auto
    /// STARTTLS or no mail.
    case required
    /// Never: only for a relay on the same host.
    case off
}

/// Where notifications go, as configured (the pipeline file's `notifications:` section,
/// then the environment): no secret in here, only where secrets are found.
public struct NotificationConfiguration: Sendable, Equatable {
    public var webhookURL: String?
    /// The environment variable holding the webhook's signing secret.
    public var webhookSecretEnv: String?
    /// The file holding it (first line).
    public var webhookSecretFile: String?
    public var smtpURL: String?
    public var from: EmailAddress?
    public var startTLS: SMTPStartTLS = .auto
    /// Integrate instance → its Customer Success Manager's address.
    public var csmEmail: [String: EmailAddress] = [:]

    public init() {}
}

/// What the notifier needs, resolved: the webhook's URL and signing key, the mail sender.
public struct NotificationSettings: Sendable, CustomStringConvertible {
    public struct Webhook: Sendable {
        public let url: String
        /// The HMAC-SHA256 key of `X-LeadFlow-Signature`.
        public let secret: String

        public init(url: String, secret: String) {
            self.url = url
            self.secret = secret
        }
    }

    public var webhook: Webhook?
    /// The From address; nil: no mail is sent.
    public var mailFrom: EmailAddress?
    public var csmEmail: [String: EmailAddress]

    public init(webhook: Webhook? = nil, mailFrom: EmailAddress? = nil, csmEmail: [String: EmailAddress] = [:]) {
        self.webhook = webhook
        self.mailFrom = mailFrom
        self.csmEmail = csmEmail
    }

    /// Never the secret, never the webhook's path (which can be a credential itself).
    public var description: String {
        "webhook: \(webhook.map { URLRedaction.origin($0.url) } ?? "none"), mail: \(mailFrom == nil ? "off" : "on"), csm: \(csmEmail.keys.sorted())"
    }
}

/// The checks a notification URL gets where it enters (pipeline file, environment): the
/// problem in words, or nil when it is fine.
public enum NotificationURLs {
    public static func webhookProblem(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "https" || scheme == "http" else {
            return "must be an http:// or https:// URL"
        }
        guard let host = components.host, !host.isEmpty else { return "must name a host" }
        if components.fragment != nil { return "must have no #fragment" }
        return nil
    }

    public static func smtpProblem(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "smtp" || scheme == "smtps" else {
            return "must be an smtp:// or smtps:// URL"
        }
        guard let host = components.host, !host.isEmpty else { return "must name a host" }
        if components.user != nil || components.password != nil {
            return "must not hold credentials: set LEADFLOW_SMTP_USER and LEADFLOW_SMTP_PASSWORD (or LEADFLOW_SMTP_PASSWORD_FILE)"
        }
        if components.query != nil || components.fragment != nil { return "must have no query or fragment" }
        return nil
    }
}

extension URLRedaction {
    /// `scheme://host[:port]` only: what an error or a listing may show of a URL whose
    /// path, query or user part can be a credential (a webhook's secret path, say).
    public static func origin(_ url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else {
            return "<url>"
        }
        return "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
    }
}

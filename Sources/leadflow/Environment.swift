import Foundation
import LeadFlowCore
#if canImport(Glibc)
import Glibc
#endif

/// What the CLI reads from its environment, checked before any work starts.
struct Environment {
    let variables: [String: String]

    /// Who runs the command: the default LEADFLOW_HOME depends on it.
    let uid: UInt32
    let userName: String?
    /// The user's folder in the password database (HOME wins when set).
    let passwdHome: String?

    init(_ variables: [String: String] = ProcessInfo.processInfo.environment) {
        self.variables = variables
        uid = getuid()
        let entry = getpwuid(uid)
        userName = entry.map { String(cString: $0.pointee.pw_name) }
        passwdHome = entry.map { String(cString: $0.pointee.pw_dir) }
    }

    private func value(_ name: String) -> String? {
        guard let value = variables[name], !value.isEmpty else { return nil }
        return value
    }

    /// The database to use: `DATABASE_URL`, else the first line of the file
    /// `DATABASE_URL_FILE` names (systemd's LoadCredential=, a mounted secret); nil: LeadFlow's
    /// own cluster under LEADFLOW_HOME. From the environment only: a URL can hold a
    /// password, and process arguments are visible to every user of the machine.
    func databaseURL() throws -> String? { try secret("DATABASE_URL") }

    /// Where `initdb` and `pg_ctl` are, for the embedded cluster (default: Debian's newest).
    var postgresBinaries: URL? { value("LEADFLOW_POSTGRES_BIN").map { URL(fileURLWithPath: $0) } }

    /// `LEADFLOW_NOW` when set (an ISO 8601 instant), else the system clock.
    func now() throws -> Date {
        guard let text = value("LEADFLOW_NOW") else { return Date() }
        guard let date = UTCTime.parse(text) else {
            throw ConfigurationError(key: "LEADFLOW_NOW", message: "is not an ISO 8601 instant with a zone, e.g. 2026-11-29T08:00:00Z")
        }
        return date
    }

    /// Archives, the spool, the key file and (when not root) the embedded cluster live here:
    /// `LEADFLOW_HOME`, else /var/lib/leadflow for a system user and
    /// $XDG_STATE_HOME/leadflow (~/.local/state/leadflow) for anyone else (`StateHome`).
    var home: URL {
        get throws {
            if let home = value("LEADFLOW_HOME") { return URL(fileURLWithPath: home) }
            guard let path = StateHome.defaultPath(uid: uid, userName: userName, xdgStateHome: value("XDG_STATE_HOME"),
                                                   homeDirectory: value("HOME") ?? passwdHome) else {
                throw ConfigurationError(key: "LEADFLOW_HOME", message: "is unset and this user has no home folder for ~/.local/state/leadflow: set LEADFLOW_HOME")
            }
            return URL(fileURLWithPath: path)
        }
    }

    /// The AES key that seals stored tokens.
    var keyFile: URL {
        get throws { try value("LEADFLOW_KEY_FILE").map { URL(fileURLWithPath: $0) } ?? home.appendingPathComponent("token.key") }
    }

    /// The key erasure tombstones are hashed under: `LEADFLOW_ERASURE_KEY_FILE`, else
    /// `erasure.key` beside the token key (one folder, one backup, one Secret).
    var erasureKeyFile: URL {
        get throws {
            try value("LEADFLOW_ERASURE_KEY_FILE").map { URL(fileURLWithPath: $0) }
                ?? keyFile.deletingLastPathComponent().appendingPathComponent("erasure.key")
        }
    }

    /// `LEADFLOW_GRAPH_URL`, else the pipeline's base URL. Every request carries a bearer
    /// token, so the URL must be `https://`; plain `http://` only reaches this machine
    /// (a Graph fake on loopback), where no network sees the token.
    func graphURL(default fallback: String = "https://graph.facebook.com") throws -> String {
        let key = value("LEADFLOW_GRAPH_URL") != nil ? "LEADFLOW_GRAPH_URL" : "graph.base_url"
        let url = value("LEADFLOW_GRAPH_URL") ?? fallback
        if let problem = GraphURLRule.problem(url) { throw ConfigurationError(key: key, message: problem) }
        return url
    }

    var graphVersion: String? { value("LEADFLOW_GRAPH_VERSION") }

    var appID: String? { value("LEADFLOW_APP_ID") }

    /// `LEADFLOW_APP_SECRET`, or the first line of the file `LEADFLOW_APP_SECRET_FILE` names.
    func appSecret() throws -> String? { try secret("LEADFLOW_APP_SECRET") }

    /// The variable `name`, or the first line of the file `name_FILE` names (systemd's
    /// LoadCredential=, a mounted secret): secrets never as arguments, never in clear in
    /// the unit or the manifest.
    func secret(_ name: String) throws -> String? {
        if let secret = value(name) { return secret }
        guard let path = value(name + "_FILE") else { return nil }
        return try Self.firstLine(of: path, key: name + "_FILE")
    }

    static func firstLine(of path: String, key: String) throws -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(key: key, message: "names a file that cannot be read: \(path)")
        }
        guard let line = text.split(whereSeparator: \.isNewline).first.map(String.init), !line.isEmpty else {
            throw ConfigurationError(key: key, message: "names an empty file: \(path)")
        }
        return line
    }

    /// Where notifications go: the pipeline's `notifications:` section under the
    /// environment's overrides (LEADFLOW_WEBHOOK_URL, LEADFLOW_WEBHOOK_SECRET(_FILE),
    /// LEADFLOW_SMTP_URL, LEADFLOW_NOTIFY_FROM). A webhook needs its signing secret, and
    /// an SMTP server a From address: either alone is a configuration error.
    func notificationSettings(_ configuration: NotificationConfiguration) throws -> NotificationSettings {
        var settings = NotificationSettings(csmEmail: configuration.csmEmail)
        if let url = value("LEADFLOW_WEBHOOK_URL") ?? configuration.webhookURL {
            if let problem = NotificationURLs.webhookProblem(url) {
                throw ConfigurationError(key: "LEADFLOW_WEBHOOK_URL", message: problem)
            }
            var secret = try self.secret("LEADFLOW_WEBHOOK_SECRET")
            if secret == nil, let name = configuration.webhookSecretEnv { secret = value(name) }
            if secret == nil, let path = configuration.webhookSecretFile {
                secret = try Self.firstLine(of: path, key: "notifications.webhook.secret_file")
            }
            guard let secret, !secret.isEmpty else {
                throw ConfigurationError(key: "LEADFLOW_WEBHOOK_SECRET",
                                         message: "is needed with a webhook URL (or LEADFLOW_WEBHOOK_SECRET_FILE, or the pipeline's notifications.webhook.secret_env or secret_file): receivers check X-LeadFlow-Signature with it")
            }
            settings.webhook = .init(url: url, secret: secret)
        }
        if smtpURL(configuration) != nil {
            if let text = value("LEADFLOW_NOTIFY_FROM") {
                guard let from = EmailAddress(text) else {
                    throw ConfigurationError(key: "LEADFLOW_NOTIFY_FROM", message: "must be an e-mail address (name@domain)")
                }
                settings.mailFrom = from
            } else {
                guard let from = configuration.from else {
                    throw ConfigurationError(key: "LEADFLOW_NOTIFY_FROM",
                                             message: "is needed with an SMTP server (or the pipeline's notifications.email.from)")
                }
                settings.mailFrom = from
            }
        }
        return settings
    }

    /// `LEADFLOW_SMTP_URL`, else the pipeline's `notifications.email.smtp_url`.
    func smtpURL(_ configuration: NotificationConfiguration) -> String? {
        value("LEADFLOW_SMTP_URL") ?? configuration.smtpURL
    }

    /// The SMTP server, its login and its TLS; nil when none is configured.
    func smtpServer(_ configuration: NotificationConfiguration) throws -> (url: String, user: String?, password: String?, startTLS: SMTPStartTLS)? {
        guard let url = smtpURL(configuration) else { return nil }
        if let problem = NotificationURLs.smtpProblem(url) { throw ConfigurationError(key: "LEADFLOW_SMTP_URL", message: problem) }
        let user = value("LEADFLOW_SMTP_USER")
        let password = try secret("LEADFLOW_SMTP_PASSWORD")
        if password != nil, user == nil {
            throw ConfigurationError(key: "LEADFLOW_SMTP_USER", message: "is needed with LEADFLOW_SMTP_PASSWORD")
        }
        return (url, user, password, configuration.startTLS)
    }
}

/// A setting is missing or wrong: exit 64.
struct ConfigurationError: LeadFlowError {
    let key: String
    let message: String
    var code: String { "config.invalid" }
    var disposition: Disposition { .fatal }
    var description: String { "\(key) \(message)" }
}

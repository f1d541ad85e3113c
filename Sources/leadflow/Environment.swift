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
    func databaseURL() throws -> String? {
        if let url = value("DATABASE_URL") { return url }
        return try firstLine(ofFileNamedBy: "DATABASE_URL_FILE")
    }

    /// The first line of the file the variable `name` names (nil when the variable is unset).
    private func firstLine(ofFileNamedBy name: String) throws -> String? {
        guard let path = value(name) else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(key: name, message: "names a file that cannot be read: \(path)")
        }
        guard let line = text.split(whereSeparator: \.isNewline).first.map(String.init), !line.isEmpty else {
            throw ConfigurationError(key: name, message: "names an empty file: \(path)")
        }
        return line
    }

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

    /// `LEADFLOW_GRAPH_URL`, else the pipeline's base URL.
    func graphURL(default fallback: String = "https://graph.facebook.com") throws -> String {
        let url = value("LEADFLOW_GRAPH_URL") ?? fallback
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw ConfigurationError(key: "LEADFLOW_GRAPH_URL", message: "must start with http:// or https://")
        }
        return url
    }

    var graphVersion: String? { value("LEADFLOW_GRAPH_VERSION") }

    var appID: String? { value("LEADFLOW_APP_ID") }

    /// `LEADFLOW_APP_SECRET`, or the first line of the file `LEADFLOW_APP_SECRET_FILE` names.
    func appSecret() throws -> String? {
        if let secret = value("LEADFLOW_APP_SECRET") { return secret }
        return try firstLine(ofFileNamedBy: "LEADFLOW_APP_SECRET_FILE")
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

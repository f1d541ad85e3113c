import Foundation
import LeadFlowCore

/// What the CLI reads from its environment, checked before any work starts.
struct Environment {
    let variables: [String: String]

    init(_ variables: [String: String] = ProcessInfo.processInfo.environment) {
        self.variables = variables
    }

    private func value(_ name: String) -> String? {
        guard let value = variables[name], !value.isEmpty else { return nil }
        return value
    }

    /// The database to use; nil: LeadFlow's own cluster under LEADFLOW_HOME. From the
    /// environment only: a URL can hold a password, and process arguments are visible to
    /// every user of the machine.
    var databaseURL: String? { value("DATABASE_URL") }

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

    /// Archives, the spool, the key file and (when not root) the embedded cluster live here.
    var home: URL { URL(fileURLWithPath: value("LEADFLOW_HOME") ?? ".leadflow") }

    /// The AES key that seals stored tokens.
    var keyFile: URL { value("LEADFLOW_KEY_FILE").map { URL(fileURLWithPath: $0) } ?? home.appendingPathComponent("token.key") }

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
        guard let path = value("LEADFLOW_APP_SECRET_FILE") else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigurationError(key: "LEADFLOW_APP_SECRET_FILE", message: "names a file that cannot be read: \(path)")
        }
        return text.split(whereSeparator: \.isNewline).first.map(String.init)
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

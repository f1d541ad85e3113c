import Foundation
import LeadFlowCore

/// What the CLI reads from its environment, checked before any work starts.
struct Environment {
    let variables: [String: String]

    init(_ variables: [String: String] = ProcessInfo.processInfo.environment) {
        self.variables = variables
    }

    /// The database to use. From the environment only: a URL can hold a password, and
    /// process arguments are visible to every user of the machine.
    func databaseURL() throws -> String {
        guard let url = variables["DATABASE_URL"], !url.isEmpty else {
            throw ConfigurationError(key: "DATABASE_URL",
                                     message: "is not set; export a libpq conninfo or URI, e.g. postgresql://user@localhost/leadflow")
        }
        return url
    }

    /// `LEADFLOW_NOW` when set (an ISO 8601 instant), else the system clock.
    func now() throws -> Date {
        guard let text = variables["LEADFLOW_NOW"], !text.isEmpty else { return Date() }
        guard let date = UTCTime.parse(text) else {
            throw ConfigurationError(key: "LEADFLOW_NOW", message: "is not an ISO 8601 instant with a zone, e.g. 2026-11-29T08:00:00Z")
        }
        return date
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

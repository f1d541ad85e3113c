import ArgumentParser
import Foundation
import LeadFlowCore
import Logging

/// `--log-format`: lines for people (text) or one JSON object per line for a log collector.
enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

/// Everything the CLI writes on stderr goes through here, so `--log-format json` holds for
/// every line (log records, tables, summaries, errors) and `--quiet` drops every line below
/// warning. Data (reports, `--json` answers, the demo's story) goes to stdout untouched.
enum Output {
    struct Settings: Sendable {
        var format = LogFormat.text
        var quiet = false
    }

    /// Set once by `CommonOptions.bootstrapLogging()`, read from any thread; the lock also
    /// keeps lines from two threads from interleaving.
    private static let lock = NSLock()
    nonisolated(unsafe) private static var current = Settings()

    static var settings: Settings {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }

    /// Text for people (a table, a summary, what was done): dropped under `--quiet` unless
    /// `level` is warning or worse; one record under `--log-format json`.
    static func say(_ text: String, level: Logger.Level = .notice, label: String = "leadflow", metadata: Logger.Metadata = [:]) {
        let settings = settings
        if settings.quiet && level < .warning { return }
        let text = text.hasSuffix("\n") ? String(text.dropLast()) : text
        switch settings.format {
        case .text: write(text + "\n")
        case .json:
            let message = text.hasPrefix("leadflow: ") ? String(text.dropFirst("leadflow: ".count)) : text
            write(JSONLogHandler.line(time: Date(), level: level, label: label, message: message, metadata: metadata))
        }
    }

    /// A failure or refusal a person must see: kept under `--quiet`.
    static func problem(_ text: String, label: String = "leadflow") {
        say(text, level: .error, label: label)
    }

    /// Raw bytes on stderr, for what is not a line of output (the hidden-input prompt).
    static func prompt(_ text: String) {
        write(text)
    }

    static func write(_ text: String) {
        lock.withLock { FileHandle.standardError.write(Data(text.utf8)) }
    }
}

/// swift-log records as one JSON object per line: `time` (UTC, ISO 8601), `level`, `label`,
/// `message`, `metadata` (an object; nested values kept as objects and arrays).
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, logLevel: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        // Later layers win: the handler's own, the provider's, then the call's.
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let given = event.metadata { merged.merge(given) { $1 } }
        Output.write(Self.line(time: Date(), level: event.level, label: label, message: event.message.description, metadata: merged))
    }

    static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        "{\"time\":\(JSONText.quoted(UTCTime.iso8601(time))),\"level\":\(JSONText.quoted(level.rawValue)),"
            + "\"label\":\(JSONText.quoted(label)),\"message\":\(JSONText.quoted(message)),\"metadata\":\(json(metadata))}\n"
    }

    static func json(_ metadata: Logger.Metadata) -> String {
        "{" + metadata.keys.sorted().map { JSONText.quoted($0) + ":" + json(metadata[$0]!) }.joined(separator: ",") + "}"
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): return JSONText.quoted(text)
        case .stringConvertible(let convertible): return JSONText.quoted(convertible.description)
        case .dictionary(let dictionary): return json(dictionary)
        case .array(let values): return "[" + values.map(json).joined(separator: ",") + "]"
        }
    }
}

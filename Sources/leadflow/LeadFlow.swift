import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStore
import Logging

/// The `leadflow` command: Facebook Lead Ads into Integrate, as a batch pipeline.
@main
struct LeadFlow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leadflow",
        abstract: "Move Facebook Lead Ads leads into Integrate's Postgres, and account for every gap.",
        discussion: """
            Environment:
              DATABASE_URL            the Postgres to use: libpq conninfo or URI
                                      (unset: LeadFlow's own cluster, started per command)
              DATABASE_URL_FILE       a file whose first line is DATABASE_URL (systemd
                                      credentials, mounted secrets)
              LEADFLOW_HOME           archives, spool, token key (default /var/lib/leadflow
                                      for a system user, else $XDG_STATE_HOME/leadflow,
                                      i.e. ~/.local/state/leadflow)
              LEADFLOW_KEY_FILE       the token key (default $LEADFLOW_HOME/token.key);
                                      only the first `connect` creates it
              LEADFLOW_ERASURE_KEY_FILE
                                      the erasure key (default erasure.key beside the
                                      token key); only the first `connect` creates it
              LEADFLOW_LOG_LEVEL      the default of --log-level
              LEADFLOW_GRAPH_URL      Graph base URL (overrides graph.base_url); https://,
                                      or http:// to loopback only
              LEADFLOW_GRAPH_VERSION  Graph version (overrides graph.api_version)
              LEADFLOW_APP_ID         the Facebook app's id
              LEADFLOW_APP_SECRET     its secret (or LEADFLOW_APP_SECRET_FILE)
              LEADFLOW_NOW            an ISO 8601 instant that replaces the clock
              LEADFLOW_WEBHOOK_URL    notifications' webhook (overrides notifications.webhook.url)
              LEADFLOW_WEBHOOK_SECRET its signing secret (or LEADFLOW_WEBHOOK_SECRET_FILE)
              LEADFLOW_SMTP_URL       smtp:// or smtps:// server for notification mail
              LEADFLOW_SMTP_USER      its login, with LEADFLOW_SMTP_PASSWORD (or _FILE)
              LEADFLOW_NOTIFY_FROM    the From address of notification mail
              LEADFLOW_POSTGRES_BIN   initdb and pg_ctl for the own cluster (default:
                                      Debian's newest /usr/lib/postgresql/*/bin)

            New here? `leadflow demo` shows the whole story in under a minute.

            Exit codes (docs/operations.md says what to do about each):
              0   success
              1   something failed (a form, a connection, the database); wins over 2
              2   finished, but a connection is void or leads were rejected
              64  bad input or configuration
            """,
        version: LeadFlowVersion.description,
        subcommands: [Demo.self, Migrate.self, Connect.self, Check.self, Run.self, Backfill.self, Gaps.self, Status.self, Reminders.self,
                      Notify.self, Notifications.self, Runs.self, Archive.self, Erase.self, Key.self]
    )

    /// Every file LeadFlow writes may hold a token or a person's data (archives, spool
    /// pages, keys, extracted pages, reports): the umask makes each one 0600 and each
    /// folder 0700 before anything is written, whatever the caller's umask. (The metrics
    /// file alone is made readable again, on purpose: node_exporter reads it.)
    static func main() async {
        umask(0o077)
        // glibc's defaults keep freed large buffers (a 500 kB answer, a 50 MB page) in
        // per-thread heaps, where they fragment: 50 MB pages peaked at 217 MB with them,
        // 154 MB with these. Buffers from 256 kB up are mapped and handed back on free,
        // and two arenas serve the few threads a run has (docs/benchmarks.md).
        MallocTuning.apply()
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("log-level"),
            help: "trace, debug, info, notice, warning, error or critical (default: LEADFLOW_LOG_LEVEL, else notice).")
    var logLevel: Logger.Level?

    @Option(name: .customLong("log-format"), help: "text (for people) or json (one object per line on stderr: time, level, label, message, metadata).")
    var logFormat: LogFormat = .text

    @Flag(help: "Only warnings and errors: a healthy run prints nothing, so cron mails only when something is wrong.")
    var quiet = false

    func validate() throws {
        if logLevel == nil, let text = ProcessInfo.processInfo.environment["LEADFLOW_LOG_LEVEL"], !text.isEmpty,
           Logger.Level(rawValue: text) == nil {
            throw ValidationError("LEADFLOW_LOG_LEVEL must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")): \(text)")
        }
    }

    /// --log-level, else LEADFLOW_LOG_LEVEL, else notice; --quiet raises it to warning.
    var effectiveLevel: Logger.Level {
        let environment = ProcessInfo.processInfo.environment["LEADFLOW_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        let level = logLevel ?? environment ?? .notice
        return quiet ? max(level, .warning) : level
    }

    func bootstrapLogging() {
        let level = effectiveLevel
        let format = logFormat
        Output.settings = .init(format: format, quiet: quiet)
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                return JSONLogHandler(label: label, logLevel: level)
            }
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// What `leadflow --version` prints: this binary, the schema it migrates to, and the Graph
/// API version it asks for unless a pipeline says otherwise.
enum LeadFlowVersion {
    static let version = "0.1.0"
    static var description: String {
        "leadflow \(version) (schema \(Migrations.latestVersion), Graph API \(Pipeline(name: "default").graph.apiVersion))"
    }
}

/// glibc's `mallopt` (malloc.h is not in Swift's Glibc module), found at run time.
enum MallocTuning {
    static let mmapThreshold: Int32 = -3 // M_MMAP_THRESHOLD
    static let arenaMax: Int32 = -8      // M_ARENA_MAX

    static func apply() {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return } // RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        _ = mallopt(mmapThreshold, 256 << 10)
        _ = mallopt(arenaMax, 2)
    }
}

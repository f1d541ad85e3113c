import ArgumentParser
import Foundation
import LeadFlowCore
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
              LEADFLOW_HOME           archives, spool, token key (default .leadflow)
              LEADFLOW_KEY_FILE       the token key (default $LEADFLOW_HOME/token.key)
              LEADFLOW_GRAPH_URL      Graph base URL (overrides graph.base_url)
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

            Exit codes:
              0   success
              2   finished, but a connection is void or leads were rejected
              64  bad input or configuration
              1   any other failure
            """,
        subcommands: [Demo.self, Migrate.self, Connect.self, Check.self, Run.self, Backfill.self, Gaps.self, Status.self, Reminders.self,
                      Notify.self, Notifications.self, Archive.self, Erase.self]
    )
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .notice

    func bootstrapLogging() {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

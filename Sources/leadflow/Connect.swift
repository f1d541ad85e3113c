import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStages
#if canImport(Glibc)
import Glibc
#endif

extension LeadFlow {
    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Authenticate Facebook Pages into an Integrate instance (or reauthenticate them).",
            discussion: """
                Reads the Connector Authenticator's access token from standard input (never from an argument: arguments are visible to every user of the machine). Needs LEADFLOW_APP_ID and LEADFLOW_APP_SECRET: a user token from the Facebook login dialog lasts an hour, so LeadFlow exchanges it once for a long-lived one (about 60 days), then takes each Page's own token from me/accounts. A Page token got that way never expires; only the Page tokens are kept, sealed with AES-GCM (key file LEADFLOW_HOME/token.key, mode 0600). The first connect into a database with no connection creates that key and the erasure key beside it (erasure.key); no other command, and no later connect, creates either (docs/keys.md). The connection then lasts 90 days from now (Facebook's data access), with a reminder 15 days before.

                Each Page must be reachable by the user with a task that allows leads, and the token must carry every required permission on that Page with lead access; otherwise that Page is refused with what the Facebook admin must do, and the other Pages go on. On an existing connection this is the reauthentication: it closes the open void period at this instant, and that window becomes due for backfill.

                Exit codes: 0 every Page connected; 64 a Page or the token refused, or the app not configured; 1 any other failure.

                Examples:
                  leadflow connect --instance acme --page 1001 --name acme-main < token.txt
                  leadflow connect --instance acme --page 1001 --page 1002 < token.txt
                  leadflow connect --instance acme --all-pages < token.txt
                  leadflow connect --instance acme --page 1001 --notify-email priya@acme.example < token.txt
                  leadflow connect --instance acme --page 1001
                  (then paste the token at the hidden prompt)
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption

        @Option(help: "The Integrate instance the Pages feed.")
        var instance: String

        @Option(name: .customLong("page"), help: "A Facebook Page id (digits); repeat for several Pages.")
        var pages: [String] = []

        @Flag(name: .customLong("all-pages"), help: "Every Page the Connector Authenticator's token reaches.")
        var allPages = false

        @Option(help: "A label for the connection, unique across instances (used by backfill --connection); one Page only. Default: the Page's name, made a label (e.g. acme-analytics).")
        var name: String?

        @Option(name: .customLong("notify-email"),
                help: "The Connector Authenticator's e-mail address: reminders and voids are sent there (stored sealed like the token, never logged). A reauthentication without it keeps the address, unless the authenticator changed.")
        var notifyEmail: String?

        @Option(name: .customLong("token"), help: .hidden)
        var tokenArgument: String?

        func validate() throws {
            if tokenArgument != nil {
                throw ValidationError("refused: never pass a token as an argument (other users can read process arguments); pipe it on standard input")
            }
            guard allPages != !pages.isEmpty else { throw ValidationError("give --page PAGE_ID (one or more) or --all-pages") }
            for page in pages where page.isEmpty || !page.allSatisfy(\.isASCII) || !page.allSatisfy(\.isNumber) {
                throw ValidationError("--page must be a Page id (digits): \(page)")
            }
            if name != nil, allPages || pages.count > 1 {
                throw ValidationError("--name labels one Page's connection; with several Pages each is named after its Page")
            }
            if let notifyEmail, EmailAddress(notifyEmail) == nil {
                // Not echoed: the address is personal data, and this line may reach a log.
                throw ValidationError("--notify-email must be one e-mail address (name@domain)")
            }
            let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._-"))
            for (flag, value) in [("--instance", instance), ("--name", name ?? "x")] {
                guard !value.isEmpty, value.unicodeScalars.allSatisfy({ $0.isASCII && allowed.contains($0) }) else {
                    throw ValidationError("\(flag) may hold letters, digits, '.', '_' and '-' only")
                }
            }
        }

        func run() async throws {
            common.bootstrapLogging()
            let outcomes: [Connector.PageOutcome]
            do {
                let token = try Self.readToken()
                let wiring = try await Wiring(pipeline: try pipelineOption.load())
                let connector = Connector(graph: try wiring.graph(), repository: wiring.connections, sealer: try await wiring.custody.keysForConnect(now: wiring.now),
                                          settings: try wiring.validationSettings())
                outcomes = try await connector.connectPages(.init(instance: instance, pages: allPages ? .all : .these(pages), label: name,
                                                                  token: token, notifyEmail: notifyEmail.flatMap(EmailAddress.init)),
                                                            now: wiring.now)
            } catch {
                throw ExitStatus.report(error)
            }
            for outcome in outcomes {
                if case .failure = outcome.result { Output.problem(Self.describe(outcome)) } else { Output.say(Self.describe(outcome)) }
            }
            if outcomes.isEmpty { Output.problem("leadflow: the token reaches no Page") }
            if outcomes.isEmpty || outcomes.contains(where: { if case .failure = $0.result { return true } else { return false } }) {
                throw ExitStatus.badInput
            }
        }

        /// One Page's line (and what follows from it), for the person who ran connect.
        static func describe(_ outcome: Connector.PageOutcome) -> String {
            let page = outcome.pageName.map { "Page \(outcome.pageID) \"\($0)\"" } ?? "Page \(outcome.pageID)"
            switch outcome.result {
            case .failure(let refusal):
                return "leadflow: refused \(page): \(refusal.reason). To fix: \(refusal.remedy)"
            case .success(let result):
                let who = result.authenticatorName.map { "\($0) (Facebook user \(result.authenticatorUserID))" }
                    ?? "Facebook user \(result.authenticatorUserID)"
                var lines = ["leadflow: \(result.saved.reauthenticated ? "reauthenticated" : "connected") \(result.label) (\(page)) as \(who)"]
                if let previous = result.saved.previousAuthenticator {
                    lines.append("  the Connector Authenticator changed from user \(previous)")
                }
                if let closed = result.saved.closedVoidPeriod {
                    lines.append("  closed the void period open since \(UTCTime.iso8601(closed.startedAt)) (\(closed.cause.rawValue)); its window is due for backfill")
                }
                lines.append("  reminder due \(UTCTime.iso8601(result.reminderAt)); reauthenticate before \(UTCTime.iso8601(result.expiresAt))")
                return lines.joined(separator: "\n")
            }
        }

        /// One line from standard input; echo is off when it is a terminal.
        static func readToken() throws -> AccessToken {
            let terminal = isatty(STDIN_FILENO) == 1
            var saved = termios()
            if terminal {
                Output.prompt("Paste the access token (input hidden), then Enter: ")
                tcgetattr(STDIN_FILENO, &saved)
                var silent = saved
                silent.c_lflag &= ~tcflag_t(ECHO)
                tcsetattr(STDIN_FILENO, TCSANOW, &silent)
            }
            defer {
                if terminal {
                    tcsetattr(STDIN_FILENO, TCSANOW, &saved)
                    Output.prompt("\n")
                }
            }
            guard let line = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces), !line.isEmpty else {
                throw ConfigurationError(key: "standard input", message: "held no token; pipe the access token into leadflow connect")
            }
            return AccessToken(line)
        }
    }
}

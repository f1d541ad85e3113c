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
            abstract: "Authenticate a Facebook Page into an Integrate instance (or reauthenticate it).",
            discussion: """
                Reads the Connector Authenticator's access token from standard input (never from an argument: arguments are visible to every user of the machine). A user token is exchanged for a long-lived one when LEADFLOW_APP_ID and LEADFLOW_APP_SECRET are set, and the Page token is taken from me/accounts. The token must be valid, belong to the app, and carry every required permission with lead access on the Page; otherwise connect refuses and says what the Facebook admin must do. The token is stored sealed with AES-GCM (key file LEADFLOW_HOME/token.key, mode 0600).

                On an existing connection this is the reauthentication: it closes the open void period at this instant, and that window becomes due for backfill.

                Examples:
                  leadflow connect --instance acme --page 1001 --name acme-main < token.txt
                  leadflow connect --instance acme --page 1001 --name acme-main
                  (then paste the token at the hidden prompt)
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption

        @Option(help: "The Integrate instance the Page feeds.")
        var instance: String

        @Option(help: "The Facebook Page id (digits).")
        var page: String

        @Option(help: "A short label for this connection, unique across instances (used by backfill --connection).")
        var name: String

        @Option(name: .customLong("token"), help: .hidden)
        var tokenArgument: String?

        func validate() throws {
            if tokenArgument != nil {
                throw ValidationError("refused: never pass a token as an argument (other users can read process arguments); pipe it on standard input")
            }
            guard page.allSatisfy(\.isNumber), !page.isEmpty else { throw ValidationError("--page must be a Page id (digits)") }
            let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._-"))
            for (flag, value) in [("--instance", instance), ("--name", name)] {
                guard !value.isEmpty, value.unicodeScalars.allSatisfy(allowed.contains) else {
                    throw ValidationError("\(flag) may hold letters, digits, '.', '_' and '-' only")
                }
            }
        }

        func run() async throws {
            common.bootstrapLogging()
            do {
                let token = try Self.readToken()
                let wiring = try Wiring(pipeline: try pipelineOption.load())
                let connector = Connector(graph: try wiring.graph(), repository: wiring.connections, sealer: try wiring.vault(),
                                          settings: try wiring.validationSettings())
                let result = try await connector.connect(.init(instance: instance, pageID: page, label: name, token: token),
                                                         now: wiring.now)
                var lines = ["leadflow: \(result.saved.reauthenticated ? "reauthenticated" : "connected") \(name) (instance \(instance), Page \(page)) as Facebook user \(result.authenticatorUserID)"]
                if let previous = result.saved.previousAuthenticator {
                    lines.append("  the Connector Authenticator changed from user \(previous)")
                }
                if let closed = result.saved.closedVoidPeriod {
                    lines.append("  closed the void period open since \(UTCTime.iso8601(closed.startedAt)) (\(closed.cause.rawValue)); its window is due for backfill")
                }
                lines.append("  reminder due \(UTCTime.iso8601(result.reminderAt)); reauthenticate before \(UTCTime.iso8601(result.expiresAt))")
                printErr(lines.joined(separator: "\n") + "\n")
            } catch {
                throw ExitStatus.report(error)
            }
        }

        /// One line from standard input; echo is off when it is a terminal.
        static func readToken() throws -> AccessToken {
            let terminal = isatty(STDIN_FILENO) == 1
            var saved = termios()
            if terminal {
                printErr("Paste the access token (input hidden), then Enter: ")
                tcgetattr(STDIN_FILENO, &saved)
                var silent = saved
                silent.c_lflag &= ~tcflag_t(ECHO)
                tcsetattr(STDIN_FILENO, TCSANOW, &silent)
            }
            defer {
                if terminal {
                    tcsetattr(STDIN_FILENO, TCSANOW, &saved)
                    printErr("\n")
                }
            }
            guard let line = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces), !line.isEmpty else {
                throw ConfigurationError(key: "standard input", message: "held no token; pipe the access token into leadflow connect")
            }
            return AccessToken(line)
        }
    }
}

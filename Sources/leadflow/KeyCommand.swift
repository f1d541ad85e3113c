import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStages
import LeadFlowStore

extension LeadFlow {
    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "key",
            abstract: "Rotate the token key.",
            subcommands: [Rotate.self]
        )

        struct Rotate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Re-encrypt every stored token under a new token key, keeping the old key until none refers to it.",
                discussion: """
                    Writes a new key beside the token key file (LEADFLOW_KEY_FILE, default LEADFLOW_HOME/token.key) as token.key.next, seals every connection's token and notification address again under it (one transaction each, recording the key id), and only when no stored secret refers to the old key moves the new file over the old one: the old key is then gone. Until then every command opens with both keys, so runs go on during a rotation; a rotation killed half way is finished by running it again (it reuses the new key already written).

                    The erasure key (erasure.key) is not rotated: tombstones are hashed under it and must keep matching. A database from before the erasure key had a file of its own gets it written first, from the token key it was derived from, so erased people stay erased after the old token key is gone.

                    Afterwards, back up the new token.key, and give it to every other host or Secret that runs LeadFlow against this database: until they have it, their commands fail with exit 64 naming the key id (docs/keys.md).

                    Exit codes: 0 rotated; 2 rotated, but connections sealed under a key neither file holds could not be opened (reconnect them); 64 a key file is missing or unsafe; 1 any other failure (run it again: it resumes).

                    Example:
                      leadflow key rotate
                    """)
            @OptionGroup var common: CommonOptions

            func run() async throws {
                common.bootstrapLogging()
                do {
                    let wiring = try await Wiring()
                    let keyFile = try wiring.environment.keyFile
                    // The erasure key first: a legacy one is derived from the token key about to go.
                    _ = try await wiring.erasureKey()
                    _ = try await wiring.vault()
                    let summary = try await KeyRotator(repository: KeyStore(wiring.database), files: TokenKeyFiles(keyFile: keyFile))
                        .rotate(now: wiring.now)
                    let old = summary.retired.isEmpty ? "" : "; key \(summary.retired.joined(separator: ", ")) removed"
                    Output.say("rotated: \(summary.resealed) connection\(summary.resealed == 1 ? "" : "s") sealed again under key \(summary.keyID)\(old). "
                               + "Back up \(keyFile.path) now, and give it to every other host or Secret that runs LeadFlow\n")
                    if !summary.unreadable.isEmpty {
                        Output.say("leadflow: \(summary.unreadable.count) connection\(summary.unreadable.count == 1 ? " is" : "s are") sealed under a key neither file holds "
                                   + "(ids \(summary.unreadable.map(String.init).joined(separator: ", "))): reconnect \(summary.unreadable.count == 1 ? "its Page" : "their Pages") with `leadflow connect`",
                                   level: .warning)
                        throw ExitStatus.finishedWithGaps
                    }
                } catch let exit as ExitCode {
                    throw exit
                } catch {
                    throw ExitStatus.report(error)
                }
            }
        }
    }
}

import ArgumentParser
import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowStages
import LeadFlowStore

extension LeadFlow {
    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a person's leads from the tables and the archives, and keep them deleted.",
            discussion: """
                Records a tombstone first (a keyed hash of the e-mail or lead id, under a key derived from the token key: the erasures table names nobody), then deletes the person's rows from leads and lead_rejections, and rewrites every archive holding their raw leads (a new archive without them, verified, recorded as superseding the old one, which is then removed). From then on no run or backfill archives or loads them again. Running it again finishes an interrupted erasure. The address is read from standard input (never an argument: other users can read those) and never printed or logged.

                With --instance, the person is erased from that Integrate instance only (its rows and the archives of its connections): another instance that connected the same Page keeps its own copy. Without it, from every instance.

                Examples:
                  echo jane.doe@example.com | leadflow erase --email
                  echo jane.doe@example.com | leadflow erase --email --instance acme
                  leadflow erase --lead 120000000000001
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption

        @Flag(name: .customLong("email"), help: "Read the person's e-mail address from standard input (matched trimmed and lower-cased).")
        var emailFromInput = false

        @Option(name: .customLong("lead"), help: "A Facebook lead id.")
        var leadID: String?

        @Option(help: "Erase from this Integrate instance only (default: every instance).")
        var instance: String?

        func validate() throws {
            guard emailFromInput || leadID != nil else { throw ValidationError("Give --email (the address on standard input) or --lead ID.") }
            if let leadID, leadID.isEmpty || !leadID.allSatisfy(\.isNumber) { throw ValidationError("--lead must be a lead id (digits).") }
        }

        func run() async throws {
            common.bootstrapLogging()
            do {
                var email: String?
                if emailFromInput {
                    let line = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces) ?? ""
                    guard line.contains("@") else { throw ValidationError("standard input does not hold an e-mail address.") }
                    email = line
                }
                let pipeline = try pipelineOption.load()
                let wiring = try await Wiring(pipeline: pipeline)
                let eraser = Eraser(repository: ErasureStore(wiring.database),
                                    archiver: TarArchiver(home: try wiring.environment.home, folder: pipeline.archive.folder,
                                                          compression: ArchiveCompression(rawValue: pipeline.archive.compression) ?? .zstd),
                                    sealer: try await wiring.vault())
                let summary = try await eraser.erase(email: email, leadID: leadID, instance: instance, now: wiring.now)
                Output.say("erased: \(summary.leadsDeleted) lead\(summary.leadsDeleted == 1 ? "" : "s") and \(summary.rejectionsDeleted) rejection\(summary.rejectionsDeleted == 1 ? "" : "s") deleted; "
                         + "\(summary.rawLeadsRemoved) raw lead\(summary.rawLeadsRemoved == 1 ? "" : "s") removed from \(summary.archivesRewritten) archive\(summary.archivesRewritten == 1 ? "" : "s"); "
                         + "a tombstone keeps them out of later runs and backfills\n")
            } catch {
                throw ExitStatus.report(error)
            }
        }
    }
}

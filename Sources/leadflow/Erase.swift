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
                Records a tombstone first (a keyed hash of the e-mail or lead id, under the erasure key, LEADFLOW_HOME/erasure.key: the erasures table names nobody), then deletes the person's rows from leads and lead_rejections, and rewrites every archive holding their raw leads (a new archive without them, verified, recorded as superseding the old one, which is then removed). What killed runs and erasures left under LEADFLOW_HOME goes too: spool folders of runs that are over, archive files no row points at, `.partial-*` files, files of superseded archives. From then on no run or backfill archives or loads them again. Running it again finishes an interrupted erasure. The address is read from standard input (never an argument: other users can read those) and never printed or logged.

                An archive this host cannot read (on another host's disk, or unreadable) does not stop it: the rows are deleted, the archive is recorded as pending (keyed hashes of what to take out, never who) and listed, and the command exits 2. The next `leadflow erase` or `leadflow archive verify --repair` on a host that can read it takes the person out.

                With --instance, the person is erased from that Integrate instance only (its rows and the archives of its connections): another instance that connected the same Page keeps its own copy. Without it, from every instance.

                Exit codes: 0 erased everywhere; 2 erased from the tables, but archives listed as pending still hold raw leads (run it again, or `leadflow archive verify --repair`, where they are); 64 bad input or a missing erasure key; 1 any other failure (run it again: it resumes).

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
                let summary = try await wiring.eraser().erase(email: email, leadID: leadID, instance: instance, now: wiring.now)
                Output.say("erased: \(summary.leadsDeleted) lead\(summary.leadsDeleted == 1 ? "" : "s") and \(summary.rejectionsDeleted) rejection\(summary.rejectionsDeleted == 1 ? "" : "s") deleted; "
                         + "\(summary.rawLeadsRemoved) raw lead\(summary.rawLeadsRemoved == 1 ? "" : "s") removed from \(summary.archivesRewritten) archive\(summary.archivesRewritten == 1 ? "" : "s"); "
                         + "a tombstone keeps them out of later runs and backfills\n")
                if summary.leftoversRemoved > 0 {
                    Output.say("removed \(summary.leftoversRemoved) spool folder\(summary.leftoversRemoved == 1 ? "" : "s") and archive file\(summary.leftoversRemoved == 1 ? "" : "s") killed runs or erasures had left\n")
                }
                guard summary.pending.isEmpty else {
                    reportPending(summary.pending)
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

extension Wiring {
    /// `erase` and `archive verify --repair`: the erasure key, the archives, the spool.
    func eraser() async throws -> Eraser {
        let home = try environment.home
        return Eraser(repository: ErasureStore(database),
                      archiver: TarArchiver(home: home, folder: pipeline.archive.folder,
                                            compression: ArchiveCompression(rawValue: pipeline.archive.compression) ?? .zstd),
                      hasher: try await erasureKey(), leads: LeadStore(database), spoolRoot: home.appendingPathComponent("spool"))
    }
}

/// The archives erasures still wait on, on stderr (a warning: kept under --quiet), and what to do.
func reportPending(_ pending: [PendingArchiveErasure]) {
    let rows = pending.map { [String($0.archiveID), $0.connection, $0.path, $0.reason, UTCTime.iso8601($0.since)] }
    Output.say("leadflow: \(pending.count) archive\(pending.count == 1 ? "" : "s") still hold\(pending.count == 1 ? "s" : "") erased people's raw leads "
               + "(the rows are deleted): run `leadflow archive verify --repair` (or the erasure again) on the host whose "
               + "LEADFLOW_HOME holds \(pending.count == 1 ? "it" : "them")\n" + TextTable.render(["archive", "connection", "path", "reason", "pending since"], rows),
               level: .warning)
}

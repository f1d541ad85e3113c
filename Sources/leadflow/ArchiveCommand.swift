import ArgumentParser
import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStages
import LeadFlowStore

extension LeadFlow {
    struct Archive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "archive",
            abstract: "List, verify, safely extract and prune the raw-page archives.",
            subcommands: [List.self, Verify.self, Extract.self, Prune.self]
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List the archives the runs wrote (pruned ones with the day their file went).",
                discussion: "Examples:\n  leadflow archive list\n  leadflow archive list --json | jq '[.archives[].bytes] | add'")
            @OptionGroup var common: CommonOptions
            @Flag(help: "Print JSON on stdout instead of a table.") var json = false

            func run() async throws {
                common.bootstrapLogging()
                let archives: [ArchiveStore.Row]
                do {
                    let wiring = try await Wiring()
                    archives = try await ArchiveStore(wiring.database).list()
                } catch {
                    throw ExitStatus.report(error)
                }
                if json { return try printJSON(["archives": archives]) }
                let rows = archives.map {
                    [String($0.id), $0.connection, String($0.run_id), $0.path, String($0.members), String($0.bytes), $0.created_at,
                     $0.pruned_at ?? ""]
                }
                FileHandle.standardOutput.write(Data(TextTable.render(["id", "connection", "run", "path", "members", "bytes", "created", "pruned"],
                                                                      rows).utf8))
            }
        }

        struct Verify: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Check archives end to end: the file's SHA-256 against the database, every member against the manifest.",
                discussion: """
                    Pruned archives (their file removed on purpose) are not checked. With --repair (implies --all), first what killed runs and erasures left is removed (spool folders of runs that are over, archive files no row points at, `.partial-*` files, files of superseded archives), and erasures pending on archives this host can read are finished.

                    Exit codes: 0 every archive verifies; 1 one does not (or is not on this host); 2 with --repair, erasures still wait on archives another host holds (they are listed).

                    Examples:
                      leadflow archive verify --all
                      leadflow archive verify --all --json | jq '.failed'
                      leadflow archive verify --repair
                      leadflow archive verify .leadflow/archives/acme/1001/run-7.tar.zst
                    """)
            @OptionGroup var common: CommonOptions
            @OptionGroup var pipelineOption: PipelineOption
            @Flag(help: "Verify every archive the database lists.") var all = false
            @Flag(help: "Print the outcome as JSON on stdout.") var json = false
            @Flag(help: "Remove what killed runs and erasures left, and finish pending erasures, then verify every archive.") var repair = false
            @Argument(help: "Archive files to verify (without --all).") var files: [String] = []

            func validate() throws {
                if (all || repair) == !files.isEmpty { throw ValidationError("give either --all (or --repair) or archive files") }
            }

            struct Checked: Encodable {
                let path: String
                let ok: Bool
                let members: Int?
                let error: String?
            }

            func run() async throws {
                common.bootstrapLogging()
                var targets: [(URL, String?)] = files.map { (URL(fileURLWithPath: $0), nil) }
                var pending: [PendingArchiveErasure] = []
                if all || repair {
                    do {
                        let wiring = try await Wiring(pipeline: try pipelineOption.load())
                        if repair {
                            let repaired = try await wiring.eraser().repair(now: wiring.now)
                            Output.say("repair: removed \(repaired.leftoversRemoved) spool folder\(repaired.leftoversRemoved == 1 ? "" : "s") and archive file\(repaired.leftoversRemoved == 1 ? "" : "s") killed runs or erasures had left; "
                                       + "\(repaired.rawLeadsRemoved) raw lead\(repaired.rawLeadsRemoved == 1 ? "" : "s") of erased people removed from \(repaired.archivesRewritten) pending archive\(repaired.archivesRewritten == 1 ? "" : "s")\n")
                            pending = repaired.pending
                        }
                        let home = try wiring.environment.home
                        targets = try await ArchiveStore(wiring.database).onDisk().map { (home.appendingPathComponent($0.path), $0.sha256) }
                    } catch {
                        throw ExitStatus.report(error)
                    }
                }
                var checked: [Checked] = []
                for (url, sha) in targets {
                    do {
                        let members = try ArchiveVerifier.verify(url, recordedSHA256: sha)
                        Output.say("ok      \(url.path) (\(members) members)\n")
                        checked.append(Checked(path: url.path, ok: true, members: members, error: nil))
                    } catch {
                        let message = (error as? any LeadFlowError)?.description ?? "\(error)"
                        Output.problem("FAILED  \(message)\n")
                        checked.append(Checked(path: url.path, ok: false, members: nil, error: message))
                    }
                }
                let failures = checked.filter { !$0.ok }.count
                if json {
                    struct Answer: Encodable {
                        let archives: [Checked]
                        let verified: Int
                        let failed: Int
                    }
                    try printJSON(Answer(archives: checked, verified: checked.count - failures, failed: failures))
                }
                if !pending.isEmpty { reportPending(pending) }
                if failures > 0 { throw ExitStatus.failure }
                if !pending.isEmpty { throw ExitStatus.finishedWithGaps }
            }
        }

        struct Extract: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Extract an archive into a new folder, refusing absolute paths, '..', links and bombs.",
                discussion: """
                    The archive is opened once, checked whole, then extracted from that same open file. The target must be missing (created 0700) or an empty folder; no link is followed, in the archive or on the way to the target. Files are 0600, folders 0700. An archive over the limits (size, or expanding more than the ratio) is refused while it is read, before its bytes are written. On any refusal or error, a full disk included, what was extracted is removed.

                    Exit codes: 0 extracted; 64 refused (a hostile or oversized archive, a target that is not a new folder); 1 another failure.

                    Example:
                      leadflow archive extract .leadflow/archives/acme/1001/run-7.tar.zst --to /tmp/run-7
                    """)
            @OptionGroup var common: CommonOptions
            @Argument(help: "The archive file.") var file: String
            @Option(help: "The folder to extract into: missing (created) or empty.") var to: String
            @Option(name: .customLong("max-bytes"), help: "The most bytes all members may hold together.")
            var maxBytes: Int64 = ArchiveExtractor.Limits().totalBytes
            @Option(name: .customLong("max-member-bytes"), help: "The most bytes one member may hold.")
            var maxMemberBytes: Int64 = ArchiveExtractor.Limits().memberBytes
            @Option(name: .customLong("max-ratio"), help: "The most the archive may expand (uncompressed bytes per compressed byte).")
            var maxRatio: Int64 = ArchiveExtractor.Limits().ratio

            func validate() throws {
                guard maxBytes > 0, maxMemberBytes > 0, maxRatio > 0 else {
                    throw ValidationError("--max-bytes, --max-member-bytes and --max-ratio must be positive")
                }
            }

            func run() async throws {
                common.bootstrapLogging()
                let limits = ArchiveExtractor.Limits(totalBytes: maxBytes, memberBytes: maxMemberBytes, ratio: maxRatio)
                do {
                    let written = try ArchiveExtractor.extract(URL(fileURLWithPath: file), to: URL(fileURLWithPath: to), limits: limits)
                    Output.say("extracted \(written.count) files into \(to)\n")
                } catch let error as ArchiveError where [.invalidMember, .tooLarge, .targetRefused].contains(error.kind) {
                    Output.problem("leadflow: \(error.description)")
                    throw ExitStatus.badInput
                } catch {
                    throw ExitStatus.report(error)
                }
            }
        }

        struct Prune: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove archive files older than a retention, keeping what the gap report needs; verified and recorded.",
                discussion: """
                    Removes the files of archives created more than DAYS ago (on the run's clock), each first verified against its record (SHA-256 and manifest): a file that does not match is left in place and named (exit 1). Each archive's row stays, marked pruned: its leads still name the archive their raw payload was in, and `archive list` shows the day it went. Every prune is recorded in the `prunes` table; a prune cut short leaves files the next one removes.

                    What stays, however old: an archive holding a rejected lead Integrate never loaded. The gap report counts those leads under "rejected", and their raw payload, which LeadFlow keeps nowhere else, is what someone fixing the mapping needs to load them. Nothing else the report reads is in an archive: it counts leads, void periods and Facebook's form counters, which no prune touches (`leadflow gaps` says the same before and after). Erasure needs the tombstones, which are never pruned, and reaches every archive still on disk; a pruned one holds no one any more.

                    Past the retention, the raw payloads of loaded leads are gone from LeadFlow (the rows in `leads` stay). Facebook keeps leads 90 days: a retention shorter than that leaves no raw copy anywhere once Facebook's expires, so choose it with whoever answers audits.

                    Examples:
                      leadflow archive prune --older-than 180 --dry-run
                      leadflow archive prune --older-than 180 --json
                    """)

            @OptionGroup var common: CommonOptions
            @OptionGroup var pipelineOption: PipelineOption
            @Option(name: .customLong("older-than"), help: "Remove archives created more than this many days ago (at least 1).") var days: Int
            @Flag(name: .customLong("dry-run"), help: "Verify and count what would go, remove nothing.") var dryRun = false
            @Flag(help: "Print the outcome as JSON on stdout.") var json = false

            func validate() throws {
                guard (1...36_500).contains(days) else { throw ValidationError("--older-than must be from 1 to 36500 days.") }
            }

            func run() async throws {
                common.bootstrapLogging()
                let outcome: ArchivePruner.Outcome
                do {
                    let pipeline = try pipelineOption.load()
                    let wiring = try await Wiring(pipeline: pipeline)
                    let archiver = TarArchiver(home: try wiring.environment.home, folder: pipeline.archive.folder,
                                               compression: ArchiveCompression(rawValue: pipeline.archive.compression) ?? .zstd)
                    outcome = try await ArchivePruner(repository: ArchiveStore(wiring.database), archiver: archiver)
                        .prune(olderThan: wiring.now.addingTimeInterval(-Double(days) * 86_400), now: wiring.now,
                               host: ProcessInfo.processInfo.hostName, dryRun: dryRun)
                } catch {
                    throw ExitStatus.report(error)
                }
                if json { try printJSON(outcome) }
                for refused in outcome.refused { Output.problem("leadflow: kept \(refused.path): \(refused.reason)") }
                Output.say("\(dryRun ? "would remove" : "removed") \(outcome.removed) archives older than \(outcome.cutoff) "
                           + "(\(outcome.bytes_freed) bytes); kept \(outcome.kept) that hold rejected leads never loaded"
                           + (outcome.already_missing > 0 ? "; \(outcome.already_missing) not on this host, left listed for a host that has them" : "")
                           + (outcome.leftovers_removed > 0 ? "; \(outcome.leftovers_removed) files of an earlier prune removed" : ""))
                if !outcome.refused.isEmpty { throw ExitStatus.failure }
            }
        }
    }
}

import ArgumentParser
import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStages

extension LeadFlow {
    struct Archive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "archive",
            abstract: "List, verify and safely extract the raw-page archives.",
            subcommands: [List.self, Verify.self, Extract.self]
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "List the archives the runs wrote.",
                discussion: "Example:\n  leadflow archive list")
            @OptionGroup var common: CommonOptions

            func run() async throws {
                common.bootstrapLogging()
                do {
                    let wiring = try await Wiring()
                    let rows = try await wiring.database.run { db in
                        try db.query("""
                            SELECT a.id, c.label, a.run_id, a.path, a.members, a.bytes, a.created_at
                            FROM archives a JOIN connections c ON c.id = a.connection_id WHERE a.superseded_by IS NULL ORDER BY a.id
                            """, label: "list archives").all.map { row in
                            [String(try row.int(0)!), try row.string(1)!, String(try row.int(2)!), try row.string(3)!,
                             String(try row.int(4)!), String(try row.int(5)!), UTCTime.iso8601(try row.date(6)!)]
                        }
                    }
                    FileHandle.standardOutput.write(Data(TextTable.render(["id", "connection", "run", "path", "members", "bytes", "created"], rows).utf8))
                } catch {
                    throw ExitStatus.report(error)
                }
            }
        }

        struct Verify: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Check archives end to end: the file's SHA-256 against the database, every member against the manifest.",
                discussion: """
                    With --repair (implies --all), first what killed runs and erasures left is removed (spool folders of runs that are over, archive files no row points at, `.partial-*` files, files of superseded archives), and erasures pending on archives this host can read are finished.

                    Exit codes: 0 every archive verifies; 1 one does not (or is not on this host); 2 with --repair, erasures still wait on archives another host holds (they are listed).

                    Examples:
                      leadflow archive verify --all
                      leadflow archive verify --repair
                      leadflow archive verify .leadflow/archives/acme/1001/run-7.tar.zst
                    """)
            @OptionGroup var common: CommonOptions
            @OptionGroup var pipelineOption: PipelineOption
            @Flag(help: "Verify every archive the database lists.") var all = false
            @Flag(help: "Remove what killed runs and erasures left, and finish pending erasures, then verify every archive.") var repair = false
            @Argument(help: "Archive files to verify (without --all).") var files: [String] = []

            func validate() throws {
                if (all || repair) == !files.isEmpty { throw ValidationError("give either --all (or --repair) or archive files") }
            }

            func run() async throws {
                common.bootstrapLogging()
                var failures = 0
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
                        targets = try await wiring.database.run { db in
                            try db.query("SELECT path, sha256 FROM archives WHERE superseded_by IS NULL ORDER BY id",
                                         label: "archives to verify").all.map {
                                (home.appendingPathComponent(try $0.string(0)!), try $0.string(1))
                            }
                        }
                    } catch {
                        throw ExitStatus.report(error)
                    }
                }
                for (url, sha) in targets {
                    do {
                        let members = try ArchiveVerifier.verify(url, recordedSHA256: sha)
                        Output.say("ok      \(url.path) (\(members) members)\n")
                    } catch {
                        failures += 1
                        Output.problem("FAILED  \((error as? any LeadFlowError)?.description ?? "\(error)")\n")
                    }
                }
                if !pending.isEmpty { reportPending(pending) }
                if failures > 0 { throw ExitStatus.failure }
                if !pending.isEmpty { throw ExitStatus.finishedWithGaps }
            }
        }

        struct Extract: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Extract an archive into a folder, refusing absolute paths, '..' and links.",
                discussion: "Example:\n  leadflow archive extract .leadflow/archives/acme/1001/run-7.tar.zst --to /tmp/run-7")
            @OptionGroup var common: CommonOptions
            @Argument(help: "The archive file.") var file: String
            @Option(help: "The folder to extract into (created when missing).") var to: String

            func run() async throws {
                common.bootstrapLogging()
                do {
                    let written = try ArchiveExtractor.extract(URL(fileURLWithPath: file), to: URL(fileURLWithPath: to))
                    Output.say("extracted \(written.count) files into \(to)\n")
                } catch let error as ArchiveError where error.kind == .invalidMember {
                    Output.problem("leadflow: \(error.description)")
                    throw ExitStatus.badInput
                } catch {
                    throw ExitStatus.report(error)
                }
            }
        }
    }
}

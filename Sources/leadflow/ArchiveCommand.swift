import ArgumentParser
import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowPostgres

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
                discussion: "Exit 1 when any archive fails.\n\nExamples:\n  leadflow archive verify --all\n  leadflow archive verify .leadflow/archives/acme/1001/run-7.tar.zst")
            @OptionGroup var common: CommonOptions
            @Flag(help: "Verify every archive the database lists.") var all = false
            @Argument(help: "Archive files to verify (without --all).") var files: [String] = []

            func validate() throws {
                if all == !files.isEmpty { throw ValidationError("give either --all or archive files") }
            }

            func run() async throws {
                common.bootstrapLogging()
                var failures = 0
                var targets: [(URL, String?)] = files.map { (URL(fileURLWithPath: $0), nil) }
                if all {
                    do {
                        let wiring = try await Wiring()
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
                if failures > 0 { throw ExitStatus.failure }
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

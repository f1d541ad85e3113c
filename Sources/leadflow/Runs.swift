import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStages
import LeadFlowStore

extension LeadFlow {
    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The history of runs: list them, show one per connection and form, prune old ones.",
            discussion: """
                Reads the run tables (runs, run_passes, run_forms; migration 9). Runs finished before migration 9 have their counters but no passes.

                Examples:
                  leadflow runs
                  leadflow runs --json --limit 5
                  leadflow runs show 42
                  leadflow runs prune --older-than 30
                """,
            subcommands: [List.self, Show.self, Prune.self],
            defaultSubcommand: List.self
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "The newest runs: kind, status, start and end, connections, leads, Graph requests, archives.",
                discussion: "Example:\n  leadflow runs --limit 20 --json")

            @OptionGroup var common: CommonOptions
            @Flag(help: "Print JSON on stdout instead of a table.") var json = false
            @Option(help: "Show at most this many runs (newest first).") var limit = 20

            func validate() throws {
                guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 100000.") }
            }

            func run() async throws {
                common.bootstrapLogging()
                let runs: [RunHistoryStore.RunRow]
                do {
                    let wiring = try await Wiring()
                    runs = try await RunHistoryStore(wiring.database).runs(limit: limit)
                } catch {
                    throw ExitStatus.report(error)
                }
                if json { return try printJSON(["runs": runs]) }
                let rows = runs.map { run -> [String] in
                    [String(run.id), run.kind, run.status + (run.failures.map { $0 > 0 ? " (\($0) failed)" : "" } ?? ""), run.started_at,
                     run.finished_at ?? "", String(run.connections), String(run.counters["inserted"] ?? 0), String(run.counters["updated"] ?? 0),
                     String(run.counters["rejected"] ?? 0), String(run.graph_requests), String(run.archives)]
                }
                FileHandle.standardOutput.write(Data(TextTable.render(
                    ["run", "kind", "status", "started", "finished", "connections", "new", "updated", "rejected", "graph requests", "archives"],
                    rows).utf8))
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "One run per connection and form: windows, pages, leads new/updated/rejected, Graph requests and errors, seconds per stage, the archive.",
                discussion: "Exit 64 when there is no such run.\n\nExamples:\n  leadflow runs show 42\n  leadflow runs show 42 --json | jq '.passes[].forms[] | select(.error_code != null)'")

            @OptionGroup var common: CommonOptions
            @Flag(help: "Print JSON on stdout instead of tables.") var json = false
            @Argument(help: "The run's id (leadflow runs lists them).") var id: Int64

            func run() async throws {
                common.bootstrapLogging()
                let detail: RunHistoryStore.RunDetail?
                do {
                    let wiring = try await Wiring()
                    detail = try await RunHistoryStore(wiring.database).run(id)
                } catch {
                    throw ExitStatus.report(error)
                }
                guard let detail else {
                    Output.problem("leadflow: there is no run \(id) (leadflow runs lists them)")
                    throw ExitStatus.badInput
                }
                if json { return try printJSON(detail) }
                FileHandle.standardOutput.write(Data(Self.text(detail).utf8))
            }

            static func text(_ detail: RunHistoryStore.RunDetail) -> String {
                let run = detail.run
                var out = "run \(run.id) (\(run.kind), \(run.status)) on \(run.host), \(run.started_at) – \(run.finished_at ?? "running")\n"
                if detail.passes.isEmpty { return out + "no pass recorded (a run before migration 9, or one that failed early)\n" }
                out += "\n" + TextTable.render(
                    ["connection", "job", "state", "pages", "new", "updated", "unchanged", "rejected", "graph requests", "errors", "seconds", "archive"],
                    detail.passes.map { pass in
                        let seconds = pass.seconds.preflight + pass.seconds.extract + pass.seconds.archive + pass.seconds.load
                        return [pass.connection, pass.job + (pass.void_period_id.map { " \($0)" } ?? ""),
                                pass.state + (pass.detail.map { ": \($0)" } ?? ""), String(pass.pages), String(pass.inserted),
                                String(pass.updated), String(pass.unchanged), String(pass.rejected), String(pass.graph_requests),
                                Self.errors(pass.graph_errors), String(format: "%.2f", seconds),
                                pass.archive.map { "\($0.path) (\($0.bytes) B\($0.pruned_at == nil ? "" : ", pruned"))" } ?? "none"]
                    })
                let forms = detail.passes.flatMap { pass in pass.forms.map { (pass, $0) } }
                if !forms.isEmpty {
                    out += "\n" + TextTable.render(
                        ["connection", "form", "window from", "window to", "pages", "leads", "new", "updated", "rejected", "graph requests", "error"],
                        forms.map { pass, form in
                            [pass.connection, form.form_id, form.window_from ?? "the beginning", form.window_to ?? "", String(form.pages),
                             String(form.leads), String(form.inserted), String(form.updated), String(form.rejected), String(form.graph_requests),
                             form.error_code ?? Self.errors(form.graph_errors)]
                        })
                }
                return out
            }

            static func errors(_ counts: [String: Int]) -> String {
                counts.keys.sorted().map { "\($0)×\(counts[$0]!)" }.joined(separator: " ")
            }
        }

        struct Prune: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Delete the rows old runs left that nothing reads any more.",
                discussion: """
                    Deletes, in one transaction, runs that started more than DAYS ago (on the run's clock) and that nothing names any more, with their passes and forms; the form snapshots older than that which the gap report does not read; and the work queue's rounds closed more than DAYS ago (server clock), with their items. A scheduled run every 10 minutes that finds nothing new leaves one of each per connection; this is what keeps those tables from growing with time.

                    Kept, however old: a run that wrote an archive (every lead names the runs that first and last loaded it, and those wrote its archive), recorded a rejection, moved a watermark, backfilled a void period or a window, or recorded an authentication event; each connection's last run and last successful run (`status` shows them); and the snapshots the gap report reads: each form's latest, and each form's last before every void period's start and before its backfill. `leadflow gaps` says the same before and after a prune. The spool of finished runs is already swept by every run. The prune is recorded in the `prunes` table.

                    Examples:
                      leadflow runs prune --older-than 30 --dry-run
                      leadflow runs prune --older-than 30
                    """)

            @OptionGroup var common: CommonOptions
            @Option(name: .customLong("older-than"), help: "Prune what is older than this many days (at least 1).") var days: Int
            @Flag(name: .customLong("dry-run"), help: "Count what would go, delete nothing.") var dryRun = false
            @Flag(help: "Print the outcome as JSON on stdout.") var json = false

            func validate() throws {
                guard (1...36_500).contains(days) else { throw ValidationError("--older-than must be from 1 to 36500 days.") }
            }

            func run() async throws {
                common.bootstrapLogging()
                let outcome: RunHistoryStore.PruneOutcome
                do {
                    let wiring = try await Wiring()
                    outcome = try await RunHistoryStore(wiring.database).pruneRuns(
                        olderThan: wiring.now.addingTimeInterval(-Double(days) * 86_400), days: days, now: wiring.now,
                        host: ProcessInfo.processInfo.hostName, dryRun: dryRun)
                } catch {
                    throw ExitStatus.report(error)
                }
                if json { try printJSON(outcome) }
                Output.say("\(dryRun ? "would delete" : "deleted") \(outcome.runs_deleted) runs older than \(outcome.cutoff) "
                           + "(\(outcome.runs_kept) kept: something still names them), \(outcome.snapshots_deleted) form snapshots, "
                           + "\(outcome.work_rounds_deleted) closed work rounds")
            }
        }
    }
}

// LeadFlow's benchmarks, run in release mode by scripts/bench-*.sh:
//   LeadFlowBench copy [rows] [rounds]         (needs DATABASE_URL)
//   LeadFlowBench extract [leads] [--quick]
//   LeadFlowBench scenario [leads] [pages]      (the Graph fake's scenario, JSON on stdout)
//   LeadFlowBench scenario-one-user [leads] [pages]  (the same, one user token reaching every Page)
//   LeadFlowBench load [leads]                  (the load stage alone; needs DATABASE_URL, a fresh database)
//   LeadFlowBench connect-scenario [pages] [issued-at]   (one user token reaching every Page)
import Foundation
import LeadFlowCore

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "copy":
    try runCopyBenchmark(rowCount: arguments.count > 1 ? Int(arguments[1]) ?? 500_000 : 500_000,
                         rounds: arguments.count > 2 ? Int(arguments[2]) ?? 3 : 3)
case "scenario":
    // The run benchmarks' scenario: PAGES Pages (from 1001, default 10) × 5 forms, tokens EAAB-bench-<page>.
    let total = arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000
    let pages = arguments.count > 2 ? Int(arguments[2]) ?? 10 : 10
    FileHandle.standardOutput.write(try JSONEncoder().encode(benchScenario(totalLeads: total, tokenPrefix: "EAAB-bench-", pages: pages)))
case "scenario-one-user":
    let total = arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000
    let pages = arguments.count > 2 ? Int(arguments[2]) ?? 1_000 : 1_000
    var scenario = benchScenario(totalLeads: total, tokenPrefix: "EAAB-bench-", pages: pages)
    scenario.tokens = [.user("EAAB-bench-user", pages: scenario.pages.map(\.id), issuedAt: "2026-12-01T00:00:00Z")]
    FileHandle.standardOutput.write(try JSONEncoder().encode(scenario))
case "load":
    try await runLoadBenchmark(totalLeads: arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000)
case "connect-scenario":
    // scripts/bench-connect.sh: PAGES Pages (from 1001) that one fresh user token reaches.
    let pages = arguments.count > 1 ? Int(arguments[1]) ?? 1_000 : 1_000
    let issuedAt = arguments.count > 2 ? arguments[2] : "2026-12-01T00:00:00Z"
    FileHandle.standardOutput.write(try JSONEncoder().encode(connectScenario(pages: pages, issuedAt: issuedAt)))
case "transform":
    try runTransformBenchmark(leads: arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000)
case "extract":
    try await runExtractBenchmark(totalLeads: arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000)
default:
    FileHandle.standardError.write(Data("usage: LeadFlowBench copy [rows] [rounds] | extract [leads] | scenario [leads] [pages] | connect-scenario [pages] [issued-at]\n".utf8))
    exit(64)
}

/// Wall-clock seconds that `body` took.
func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    return (ContinuousClock.now - start).timeInterval
}


/// This process's peak resident memory so far (VmHWM), in MB.
func peakResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
    return kilobytes / 1024
}

// The Graph fake as a process, for benchmarks and for trying LeadFlow by hand:
//   graph-fake SCENARIO.json [--now ISO8601] [--latency-ms N] [--request-log FILE] [--exit-on-stdin-eof]
// Prints "listening on http://127.0.0.1:PORT" on stdout, then serves until killed (or,
// with --exit-on-stdin-eof, until its parent closes its standard input or dies).
// Move its clock with: curl -X POST --data 2026-12-01T00:00:00Z http://127.0.0.1:PORT/__fake/now
// Change its latency with: curl -X POST --data 50 http://127.0.0.1:PORT/__fake/latency
import Foundation
import LeadFlowCore
import LeadFlowGraphFake

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("graph-fake: \(message)\n".utf8))
    exit(64)
}

// A parent that spawned us from a thread with signals blocked passes that mask on:
// unblock them, so SIGTERM ends the fake as it should.
var allSignals = sigset_t()
sigfillset(&allSignals)
sigprocmask(SIG_UNBLOCK, &allSignals, nil)
signal(SIGTERM, SIG_DFL)

var arguments = Array(CommandLine.arguments.dropFirst())
var exitOnStdinEOF = false
if let flag = arguments.firstIndex(of: "--exit-on-stdin-eof") {
    exitOnStdinEOF = true
    arguments.remove(at: flag)
}
guard let scenarioPath = arguments.first, !scenarioPath.hasPrefix("-") else {
    fail("usage: graph-fake SCENARIO.json [--now ISO8601] [--latency-ms N] [--request-log FILE]")
}
arguments.removeFirst()
var now = Date()
var latency: Int?
var requestLog: URL?
while let option = arguments.first {
    arguments.removeFirst()
    guard let value = arguments.first else { fail("\(option) needs a value") }
    arguments.removeFirst()
    switch option {
    case "--now":
        guard let date = UTCTime.parse(value) else { fail("--now: not an ISO 8601 instant with a zone: \(value)") }
        now = date
    case "--latency-ms":
        guard let milliseconds = Int(value) else { fail("--latency-ms: not a number: \(value)") }
        latency = milliseconds
    case "--request-log": requestLog = URL(fileURLWithPath: value)
    default: fail("unknown option \(option)")
    }
}

var scenario: GraphScenario
do {
    scenario = try GraphScenario.load(URL(fileURLWithPath: scenarioPath))
} catch {
    fail("cannot read \(scenarioPath): \(error)")
}
if let latency { scenario.latencyMilliseconds = latency }
let fake = try GraphFake(scenario: scenario, now: now, requestLog: requestLog)
FileHandle.standardOutput.write(Data("listening on \(fake.baseURL)\n".utf8))
if exitOnStdinEOF {
    // Read until the parent's end of the pipe closes, then go: no orphaned fakes.
    while !FileHandle.standardInput.availableData.isEmpty {}
    exit(0)
}
while true { Thread.sleep(forTimeInterval: 3600) }

// Property-based fuzzing of the two parsers that read outside input:
//   LeadFlowFuzz graph SECONDS [SEED]      Graph pages of leads → decode, transform, hash input
//   LeadFlowFuzz pipeline SECONDS [SEED]   pipeline files → PipelineFile.parse
// Each case starts from a valid input and mutates it (byte flips, insertions, deletions,
// splices of hostile fragments: invalid UTF-8, deep nesting, huge numbers, wrong types).
// The property: the parser returns a value or throws one of its errors, never traps; an
// accepted page transforms every lead into a lead or a rejection. The input under test is
// written to fuzz-current.bin before each call, so a crash leaves it behind to become a
// regression test. Prints the counts at the end (scripts/fuzz.sh runs both for 10 minutes).
import Foundation
import LeadFlowCore
import LeadFlowPipelineFile

var generator = SplitMix(seed: CommandLine.arguments.count > 3 ? UInt64(CommandLine.arguments[3]) ?? 1 : UInt64(Date().timeIntervalSince1970))
let mode = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : ""
let seconds = CommandLine.arguments.count > 2 ? Double(CommandLine.arguments[2]) ?? 10 : 10
guard mode == "graph" || mode == "pipeline" else {
    FileHandle.standardError.write(Data("usage: LeadFlowFuzz graph|pipeline SECONDS [SEED]\n".utf8))
    exit(64)
}
let current = URL(fileURLWithPath: "fuzz-current-\(mode).bin")
_ = FileManager.default.createFile(atPath: current.path, contents: nil)
let currentHandle = try FileHandle(forWritingTo: current)

/// A small, fast, seedable generator: runs can be replayed from their seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

let hostile: [[UInt8]] = [
    Array("{".utf8), Array("}".utf8), Array("[".utf8), Array("]".utf8), Array("\"".utf8), Array(",".utf8), Array(":".utf8),
    [0xC3, 0x28], [0xFF], [0xED, 0xA0, 0x80], [0x00], Array("\\u0000".utf8), Array("\\ud800".utf8),
    Array("1e999999".utf8), Array("-9223372036854775809".utf8), Array("null".utf8), Array("true".utf8),
    Array(String(repeating: "[", count: 5_000).utf8), Array(String(repeating: "{\"a\":", count: 2_000).utf8),
    Array(String(repeating: "x", count: 100_000).utf8),
    Array("\"values\":{}".utf8), Array("\"values\":[1,2]".utf8), Array("\"field_data\":\"x\"".utf8), Array("\"id\":12".utf8),
    Array("\"created_time\":\"2026-02-30T25:61:61+9999\"".utf8),
    // YAML's own hostile shapes.
    Array("\n  - ".utf8), Array(": ".utf8), Array("\t".utf8), Array("&a [*a, *a]".utf8), Array("!!binary".utf8),
    Array("\n---\n".utf8), Array("? ".utf8), Array("'".utf8), Array("|\n".utf8), Array("page_size: 99999999999999999999".utf8),
]

@MainActor func mutate(_ input: [UInt8]) -> [UInt8] {
    var bytes = input
    for _ in 0..<Int.random(in: 1...6, using: &generator) {
        let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
        switch Int.random(in: 0..<6, using: &generator) {
        case 0 where !bytes.isEmpty: bytes[position] ^= UInt8.random(in: 1...255, using: &generator)
        case 1: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: position)
        case 2 where !bytes.isEmpty: bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...64, using: &generator)))
        case 3: bytes.insert(contentsOf: hostile.randomElement(using: &generator)!, at: position)
        case 4 where bytes.count > 8:
            let start = Int.random(in: 0..<bytes.count, using: &generator)
            let chunk = bytes[start..<min(bytes.count, start + Int.random(in: 1...256, using: &generator))]
            bytes.insert(contentsOf: chunk, at: position)
        default: bytes = Array(bytes.prefix(position))
        }
    }
    return bytes
}

@MainActor func record(_ bytes: [UInt8]) {
    try? currentHandle.truncate(atOffset: 0)
    try? currentHandle.seek(toOffset: 0)
    currentHandle.write(Data(bytes))
}

// The corpus: valid inputs to start from.
let corpus: [[UInt8]]
switch mode {
case "graph":
    let page = #"{"data":[{"id":"100110000001","created_time":"2026-01-05T09:30:00+0000","ad_id":"61001","adset_id":"61002","campaign_id":"61003","form_id":"10011","is_organic":false,"platform":"fb","field_data":[{"name":"email","values":["  Lead@Example.com "]},{"name":"full_name","values":["Ada Lovelace"]},{"name":"phone_number","values":["+1 555 0100"]},{"name":"country","values":["France"]},{"name":"Quel est votre budget ?","values":["10 000 €"]}],"custom_disclaimer_responses":[{"checkbox_key":"optin","is_checked":"1"}]},{"id":"100110000002","created_time":"2026-01-05T10:30:00+0000","is_organic":true,"field_data":[{"name":"work_email","values":["x@y.io"]}]}],"paging":{"cursors":{"before":"QVFI","after":"QVFJ"},"next":"https://graph.facebook.com/v25.0/10011/leads?after=QVFJ"}}"#
    corpus = [Array(page.utf8), Array(#"{"data":[]}"#.utf8)]
default:
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    corpus = [try Data(contentsOf: root.appendingPathComponent("pipelines/facebook-leads.yml")),
              try Data(contentsOf: root.appendingPathComponent("fixtures/pipelines/no-automatic-backfill.yml"))].map { Array($0) }
}

var pipeline = Pipeline(name: "fuzz")
pipeline.defaultSource = "fuzz"
let transformer = LeadTransformer(pipeline: pipeline)
let context = LeadContext(instance: "fuzz", connectionID: 1, pageID: "1", formID: "1", formName: "Fuzz")
var cases = 0, accepted = 0, rejected = 0, leads = 0, leadRejections = 0
let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
while ContinuousClock.now < deadline {
    let input = mutate(corpus.randomElement(using: &generator)!)
    record(input)
    cases += 1
    switch mode {
    case "graph":
        do {
            // The run's own parser: a page either parses (its odd leads set apart) or is refused.
            let page = try GraphLeadPage.parse(input)
            accepted += 1
            leadRejections += page.malformed.count
            precondition(page.malformed.allSatisfy { !$0.reason.isEmpty }, "a malformed lead without a reason")
            for raw in page.leads {
                _ = raw.canonicalJSON
                switch transformer.transform(raw, context: context) {
                case .lead: leads += 1
                case .rejected(let rejection):
                    leadRejections += 1
                    precondition(!rejection.reasons.isEmpty, "a rejection without a reason")
                }
            }
        } catch {
            rejected += 1
        }
    default:
        do {
            _ = try PipelineFile.parse(String(decoding: input, as: UTF8.self), file: "fuzz.yml")
            accepted += 1
        } catch let error as PipelineFileError {
            precondition(error.description.hasPrefix("fuzz.yml"), "an error that does not name the file: \(error.description)")
            rejected += 1
        } catch {
            rejected += 1
        }
    }
}
try? FileManager.default.removeItem(at: current)
print("\(mode): \(cases) cases in \(Int(seconds)) s, \(accepted) accepted, \(rejected) refused with an error, no crash"
      + (mode == "graph" ? "; accepted pages held \(leads) leads and \(leadRejections) rejections" : ""))

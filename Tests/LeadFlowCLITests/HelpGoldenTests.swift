import Foundation
import LeadFlowTestSupport
import Testing

/// Every command's `--help` is exactly its golden file, `fixtures/golden/help/<command>.txt`
/// (`leadflow.txt` for the top level, `archive-list.txt` for `archive list`): a changed
/// option, default, example or exit code shows up as a diff to review, not as a passing
/// `contains`. `LEADFLOW_UPDATE_GOLDEN=1` rewrites them.
@Suite struct HelpGoldenTests {
    /// ArgumentParser wraps to the terminal's width: 80 columns, whatever runs the tests.
    static let environment = ProcessInfo.processInfo.environment.merging(["COLUMNS": "80"]) { $1 }

    static func help(_ path: [String]) async throws -> ProcessResult {
        try await runProgram(LeadFlowBinary.path, path + ["--help"], environment: environment)
    }

    /// The subcommands a help text lists (ArgumentParser's SUBCOMMANDS section).
    static func subcommands(in help: String) -> [String] {
        guard let section = help.range(of: "SUBCOMMANDS:\n") else { return [] }
        var names: [String] = []
        for line in help[section.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty || !line.hasPrefix(" ") { break }
            // A name sits two spaces in; deeper lines continue a description.
            guard line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first else { continue }
            names.append(String(name))
        }
        return names
    }

    static func goldenName(_ path: [String]) -> String { path.isEmpty ? "leadflow" : path.joined(separator: "-") }

    @Test func everyHelpTextIsItsGoldenFile() async throws {
        var pending: [[String]] = [[]]
        var seen: [String] = []
        while !pending.isEmpty {
            let path = pending.removeFirst()
            let result = try await Self.help(path)
            let shown = (["leadflow"] + path + ["--help"]).joined(separator: " ")
            #expect(result.status == 0, "\(shown): \(result.stderr)")
            let name = Self.goldenName(path)
            seen.append(name)
            if let difference = try Golden.difference(result.stdout, from: "help/\(name).txt") {
                Issue.record("\(shown) \(difference)")
            }
            pending += Self.subcommands(in: result.stdout).map { path + [$0] }
        }
        // Every command the binary has is covered, and no golden file is left for a command it lost.
        #expect(seen.count >= 20, "found only \(seen)")
        let files = try FileManager.default.contentsOfDirectory(atPath: Repository.fixture("golden/help").path)
            .filter { $0.hasSuffix(".txt") }.map { String($0.dropLast(4)) }
        #expect(Set(files) == Set(seen), "golden files without a command: \(Set(files).subtracting(seen).sorted())")
    }

    @Test func theDiffShowsTheChangedLines() {
        let diff = Golden.lineDiff(expected: "a\nb\nc\n", actual: "a\nB\nc\n")
        #expect(diff == "-2: b\n+2: B")
    }
}

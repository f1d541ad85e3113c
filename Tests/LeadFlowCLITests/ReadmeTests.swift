import Foundation
import LeadFlowTestSupport
import Testing

/// The README's two commands are what CI and the demo test run: no drift.
@Suite struct ReadmeTests {
    func text(_ path: String) throws -> String {
        try String(contentsOf: Repository.root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The commands of the first `sh` block under "## Two commands", comments removed.
    func twoCommands() throws -> [String] {
        let readme = try text("README.md")
        let section = try #require(readme.range(of: "## Two commands"))
        let block = try #require(readme[section.upperBound...].range(of: "```sh\n"))
        let end = try #require(readme[block.upperBound...].range(of: "```"))
        return readme[block.upperBound..<end.lowerBound].split(separator: "\n").map {
            String($0.split(separator: "#", maxSplits: 1)[0]).trimmingCharacters(in: .whitespaces)
        }
    }

    @Test func theReadmesCommandsAreWhatCIAndTheDemoRun() async throws {
        let commands = try twoCommands()
        #expect(commands == ["bash scripts/demo.sh", "bash scripts/test.sh"])
        // CI runs the second, and nothing else.
        let ci = try text(".ci/run").split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("set ") && !$0.hasPrefix("cd ") && !$0.isEmpty }
        #expect(ci.map(String.init) == [commands[1]])
        // The first ends in the binary DemoCommandTests runs.
        #expect(try text("scripts/demo.sh").contains("exec .build/debug/leadflow demo \"$@\""))
    }
}

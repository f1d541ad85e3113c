import Foundation
import LeadFlowTestSupport
import Testing

/// The README and `docs/` stay true: the two commands are what CI and the demo run, every
/// `leadflow` command they show is one the binary accepts (its subcommands and options),
/// every link lands on a file and heading that exist, every test a guarantee names exists.
@Suite struct ReadmeTests {
    func text(_ path: String) throws -> String {
        try String(contentsOf: Repository.root.appendingPathComponent(path), encoding: .utf8)
    }

    /// README.md and every Markdown file under docs/.
    func documents() throws -> [String] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: Repository.root.appendingPathComponent("docs").path)
            .filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        return ["README.md"] + docs
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

    /// The README is the short way in; the rest is in docs/.
    @Test func theReadmeStaysShortAndKeepsItsSections() throws {
        let readme = try text("README.md")
        #expect(readme.split(separator: "\n", omittingEmptySubsequences: false).count <= 250)
        for heading in ["## Two commands", "## Install", "## The first real run against Facebook", "## Operating it"] {
            #expect(readme.contains("\n\(heading)\n"), "\(heading)")
        }
        // Guarantees live in docs/guarantees.md, linked from here.
        #expect(!readme.contains("\n## Guarantees"))
        #expect(readme.contains("(docs/guarantees.md)"))
        #expect(try text("docs/guarantees.md").hasPrefix("# Guarantees\n"))
    }

    // MARK: - Commands

    /// Every `leadflow …` line of an `sh` block in the README and docs/: the words after
    /// `leadflow`, redirections and trailing comments left out, continuation lines joined.
    func shownCommands() throws -> [(document: String, words: [String])] {
        var found: [(String, [String])] = []
        for document in try documents() {
            var inShell = false
            var pending = ""
            for line in try text(document).split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
                if line.hasPrefix("```") {
                    inShell = !inShell && line == "```sh"
                    continue
                }
                guard inShell else { continue }
                var command = pending + line.trimmingCharacters(in: .whitespaces)
                if command.hasSuffix("\\") {
                    pending = String(command.dropLast()) + " "
                    continue
                }
                pending = ""
                if command.hasPrefix("#") { continue }
                if let comment = command.range(of: " #") { command = String(command[..<comment.lowerBound]) }
                for segment in command.components(separatedBy: CharacterSet(charactersIn: "|;&")) {
                    var words = segment.split(separator: " ").map(String.init)
                    // Environment assignments before the command (`LEADFLOW_NOW=… leadflow run`).
                    while let first = words.first, first.contains("="), !first.hasPrefix("-") { words.removeFirst() }
                    guard words.first == "leadflow" else { continue }
                    words.removeFirst()
                    if let redirect = words.firstIndex(where: { $0.hasPrefix("<") || $0.hasPrefix(">") }) { words = Array(words[..<redirect]) }
                    found.append((document, words))
                }
            }
        }
        return found
    }

    /// `leadflow <path> --help`, its subcommands (the default one marked) and its text.
    struct Help {
        let text: String
        let subcommands: [String]
        let defaultSubcommand: String?
    }

    final class HelpCache: @unchecked Sendable {
        private var helps: [[String]: Help] = [:]
        private let lock = NSLock()
        func get(_ path: [String]) async throws -> Help {
            if let help = lock.withLock({ helps[path] }) { return help }
            let result = try await runProgram(LeadFlowBinary.path, path + ["--help"])
            #expect(result.status == 0, "leadflow \(path.joined(separator: " ")) --help: \(result.stderr)")
            var subcommands: [String] = []
            var defaultSubcommand: String?
            if let section = result.stdout.range(of: "SUBCOMMANDS:\n") {
                for line in result.stdout[section.upperBound...].split(separator: "\n") where line.hasPrefix("  ") && !line.hasPrefix("   ") {
                    let words = line.split(separator: " ")
                    guard let name = words.first, !line.contains("See '") else { continue }
                    subcommands.append(String(name))
                    if words.count > 1, words[1] == "(default)" { defaultSubcommand = String(name) }
                }
            }
            let help = Help(text: result.stdout, subcommands: subcommands, defaultSubcommand: defaultSubcommand)
            lock.withLock { helps[path] = help }
            return help
        }
    }

    @Test func everyCommandTheDocumentsShowIsOneTheBinaryAccepts() async throws {
        let commands = try shownCommands()
        #expect(commands.count >= 40, "found \(commands.count)")
        let cache = HelpCache()
        for (document, words) in commands {
            var path: [String] = []
            var help = try await cache.get([])
            var rest = words[...]
            while let word = rest.first, help.subcommands.contains(word) {
                path.append(word)
                rest = rest.dropFirst()
                help = try await cache.get(path)
            }
            if !help.subcommands.isEmpty, !path.isEmpty {
                // A group: only its default subcommand takes options.
                let defaulted = try #require(help.defaultSubcommand, "\(document): leadflow \(words.joined(separator: " ")) names no subcommand of \(path)")
                help = try await cache.get(path + [defaulted])
            }
            let shown = "\(document): leadflow \(words.joined(separator: " "))"
            #expect(!(path.isEmpty && words.first.map { !$0.hasPrefix("-") } ?? false), "\(shown): no such command")
            for option in rest where option.hasPrefix("--") {
                let name = String(option.split(separator: "=", maxSplits: 1)[0])
                #expect(help.text.contains(name + " ") || help.text.contains(name + "\n"), "\(shown): \(name) is not an option of leadflow \(path.joined(separator: " "))")
            }
        }
    }

    /// docs/commands.md names every subcommand and every environment variable the binary's
    /// own help does.
    @Test func theCommandsDocumentCoversTheBinary() async throws {
        let commands = try text("docs/commands.md")
        let cache = HelpCache()
        let root = try await cache.get([])
        #expect(root.subcommands.count >= 14)
        for subcommand in root.subcommands {
            #expect(commands.contains("`leadflow \(subcommand)"), "docs/commands.md does not show leadflow \(subcommand)")
            let group = try await cache.get([subcommand])
            // The default subcommand may be shown as the group itself (`leadflow runs`).
            for nested in group.subcommands where nested != group.defaultSubcommand {
                #expect(commands.contains("`leadflow \(subcommand) \(nested)"), "docs/commands.md does not show leadflow \(subcommand) \(nested)")
            }
        }
        let variables = Set(root.text.split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "_" }).map(String.init)
            .filter { ($0.hasPrefix("LEADFLOW_") || $0.hasPrefix("DATABASE_URL")) && $0.uppercased() == $0 })
        #expect(variables.count >= 15)
        for variable in variables {
            #expect(commands.contains("`\(variable)`"), "docs/commands.md does not list \(variable)")
        }
    }

    // MARK: - Links and names

    /// GitHub's anchor for a heading: lower-cased, punctuation other than `-` dropped,
    /// spaces as hyphens.
    static func anchor(_ heading: String) -> String {
        String(heading.lowercased().unicodeScalars.filter {
            CharacterSet.alphanumerics.contains($0) || $0 == " " || $0 == "-" || $0 == "_"
        }.map { $0 == " " ? "-" : Character($0) })
    }

    @Test func everyRelativeLinkLandsOnAFileAndAHeading() throws {
        for document in try documents() {
            let base = URL(fileURLWithPath: document).deletingLastPathComponent().relativePath
            let body = try text(document)
            let regex = try NSRegularExpression(pattern: #"\]\(([^)\s]+)\)"#)
            for match in regex.matches(in: body, range: NSRange(body.startIndex..., in: body)) {
                let target = String(body[Range(match.range(at: 1), in: body)!])
                guard !target.contains("://"), !target.hasPrefix("mailto:") else { continue }
                let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let file = parts[0].isEmpty ? document : (base == "." ? parts[0] : base + "/" + parts[0])
                let path = URL(fileURLWithPath: file).standardized.relativePath
                #expect(FileManager.default.fileExists(atPath: Repository.root.appendingPathComponent(path).path), "\(document): \(target)")
                if parts.count == 2, path.hasSuffix(".md") {
                    let headings = try text(path).split(separator: "\n").filter { $0.hasPrefix("#") }
                        .map { Self.anchor(String($0.drop { $0 == "#" }.dropFirst())) }
                    #expect(headings.contains(parts[1]), "\(document): \(target) names no heading of \(path)")
                }
            }
        }
    }

    /// Each `SuiteName.testName` the guarantees name is a test that exists.
    @Test func everyTestTheGuaranteesNameExists() throws {
        let guarantees = try text("docs/guarantees.md") + (try text("docs/operations.md"))
        let tests = try FileManager.default.subpathsOfDirectory(atPath: Repository.root.appendingPathComponent("Tests").path)
            .filter { $0.hasSuffix(".swift") }
            .map { try text("Tests/" + $0) }.joined(separator: "\n")
        let regex = try NSRegularExpression(pattern: #"`([A-Z][A-Za-z]+Tests)\.([a-z][A-Za-z]+)`"#)
        let named = regex.matches(in: guarantees, range: NSRange(guarantees.startIndex..., in: guarantees)).map {
            (String(guarantees[Range($0.range(at: 1), in: guarantees)!]), String(guarantees[Range($0.range(at: 2), in: guarantees)!]))
        }
        #expect(named.count >= 15)
        for (suite, test) in named {
            #expect(tests.contains("struct \(suite)"), "no suite \(suite)")
            #expect(tests.contains("func \(test)("), "no test \(suite).\(test)")
        }
    }
}

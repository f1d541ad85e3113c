import Foundation

/// Text compared with a golden file under `fixtures/golden/`; `LEADFLOW_UPDATE_GOLDEN=1`
/// rewrites the file from the text instead (then review the diff in git).
public enum Golden {
    public static var updating: Bool { ProcessInfo.processInfo.environment["LEADFLOW_UPDATE_GOLDEN"] == "1" }

    /// nil when `text` is the golden file's text; else what differs, line by line, to print
    /// in the failure. A missing file differs from every text.
    public static func difference(_ text: String, from relativePath: String) throws -> String? {
        let file = Repository.fixture("golden/\(relativePath)")
        if updating {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: file)
        }
        guard let golden = try? String(contentsOf: file, encoding: .utf8) else {
            return "\(file.path) is missing (LEADFLOW_UPDATE_GOLDEN=1 writes it)"
        }
        guard text != golden else { return nil }
        return "differs from \(file.path) (LEADFLOW_UPDATE_GOLDEN=1 rewrites it):\n" + lineDiff(expected: golden, actual: text)
    }

    /// Lines of the golden text missing from the actual one (`-`) and lines added (`+`),
    /// each with its line number, after the common start and before the common end: enough
    /// to see a help text's change without a diff tool.
    public static func lineDiff(expected: String, actual: String) -> String {
        let old = expected.components(separatedBy: "\n"), new = actual.components(separatedBy: "\n")
        var start = 0
        while start < old.count, start < new.count, old[start] == new[start] { start += 1 }
        var oldEnd = old.count, newEnd = new.count
        while oldEnd > start, newEnd > start, old[oldEnd - 1] == new[newEnd - 1] { oldEnd -= 1; newEnd -= 1 }
        let removed = old[start..<oldEnd].enumerated().map { "-\(start + $0.offset + 1): \($0.element)" }
        let added = new[start..<newEnd].enumerated().map { "+\(start + $0.offset + 1): \($0.element)" }
        return (removed + added).joined(separator: "\n")
    }
}

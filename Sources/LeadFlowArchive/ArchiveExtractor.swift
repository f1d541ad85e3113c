import Foundation
import LeadFlowCore

/// Extracts an archive into a folder, refusing anything that could land outside it or
/// smuggle a link: absolute names, `..`, symbolic and hard links, devices. The whole
/// archive is checked before the first byte is written, so a hostile one writes nothing.
public enum ArchiveExtractor {
    @discardableResult
    public static func extract(_ url: URL, to folder: URL) throws -> [String] {
        let entries = try ArchiveReader.list(url)
        for entry in entries {
            guard entry.kind == .file || entry.kind == .directory else {
                throw ArchiveError(.invalidMember, function: "extract", path: url.path,
                                   message: "refused: member \(entry.name) is a \(entry.kind == .symbolicLink || entry.kind == .hardLink ? "link" : "special file")")
            }
            let name = entry.kind == .directory && entry.name.hasSuffix("/") ? String(entry.name.dropLast()) : entry.name
            guard ArchiveMemberName.isSafe(name) else {
                throw ArchiveError(.invalidMember, function: "extract", path: url.path,
                                   message: "refused: member \(entry.name) would land outside the target folder")
            }
        }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let reader = try ArchiveReader(url: url)
        var written: [String] = []
        while let entry = try reader.nextEntry() {
            let target = folder.appendingPathComponent(entry.name)
            if entry.kind == .directory {
                try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
                continue
            }
            try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: target.path, contents: nil) else {
                throw ArchiveError.posix("create", path: target.path, errno: errno)
            }
            let handle = try FileHandle(forWritingTo: target)
            defer { try? handle.close() }
            try reader.readData { handle.write(Data($0)) }
            written.append(entry.name)
        }
        return written
    }
}

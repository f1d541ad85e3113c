import Crypto
import Foundation
import LeadFlowCore

/// A run's raw pages as one tar archive (zstd by default) under LEADFLOW_HOME, with a
/// `manifest.json`; published atomically and verified by reading it back.
public struct TarArchiver: RawArchiver {
    let home: URL
    /// Under LEADFLOW_HOME (the pipeline's `archive.folder`).
    let folder: String
    let compression: ArchiveCompression

    public init(home: URL, folder: String = "archives", compression: ArchiveCompression) {
        self.home = home
        self.folder = folder
        self.compression = compression
    }

    /// `archives/<instance>/<page>/run-<id>.tar.zst`; a backfill's `run-<id>-void-<period>`
    /// or `run-<id>-backfill`; a reconciliation's re-read `run-<id>-reread-<depth>`. Relative to LEADFLOW_HOME, so the home can move.
    public func relativePath(for subject: ArchiveSubject) -> String {
        let pass: String
        switch subject.pass {
        case .scheduled: pass = ""
        case .voidPeriod(let id): pass = "-void-\(id)"
        case .window: pass = "-backfill"
        case .reread(let depth): pass = "-reread-\(depth)"
        }
        return "\(folder)/\(subject.instance)/\(subject.pageID)/run-\(subject.runID)\(pass).\(compression.fileExtension)"
    }

    public func archive(members: [(name: String, file: URL)], manifest: Data, subject: ArchiveSubject) async throws -> ArchivedRun {
        try await archive(members: members, manifest: manifest, relativePath: relativePath(for: subject))
    }

    /// libarchive's compression, the fsync and the read-back run on a thread of their own,
    /// never on the cooperative pool.
    public func archive(members: [(name: String, file: URL)], manifest: Data, relativePath: String) async throws -> ArchivedRun {
        try await OffPool.run { try writeArchive(members: members, manifest: manifest, relativePath: relativePath) }
    }

    public func members(of relativePath: String) async throws -> [(name: String, data: Data)] {
        try await OffPool.run { try readMembers(of: relativePath) }
    }

    public func remove(_ relativePath: String) async throws {
        let url = home.appendingPathComponent(relativePath)
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        try FileManager.default.removeItem(at: url)
    }

    public func exists(_ relativePath: String) async -> Bool {
        FileManager.default.fileExists(atPath: home.appendingPathComponent(relativePath).path)
    }

    public func verify(_ relativePath: String, sha256: String) async throws -> Int {
        let url = home.appendingPathComponent(relativePath)
        return try await OffPool.run { try ArchiveVerifier.verify(url, recordedSHA256: sha256) }
    }

    public func storedFiles() async throws -> [String] {
        try await OffPool.run { [home, folder] in
            var files: [String] = []
            // lstat, not the enumerator: a link (to a folder or a file) is never followed.
            func walk(_ relative: String) {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: home.appendingPathComponent(relative).path)) ?? []
                for name in names.sorted() {
                    let path = relative + "/" + name
                    var status = stat()
                    guard lstat(home.appendingPathComponent(path).path, &status) == 0 else { continue }
                    switch status.st_mode & S_IFMT {
                    case S_IFDIR: walk(path)
                    case S_IFREG: files.append(path)
                    default: continue
                    }
                }
            }
            walk(folder)
            return files
        }
    }

    private func writeArchive(members: [(name: String, file: URL)], manifest: Data, relativePath: String) throws -> ArchivedRun {
        let url = home.appendingPathComponent(relativePath)
        let writer = try ArchiveWriter(publishingTo: url, compression: compression)
        for member in members { try writer.addFile(named: member.name, contentsOf: member.file) }
        try writer.addFile(named: "manifest.json", contents: manifest)
        DebugKill.point(DebugKill.archive)
        try writer.publish()
        let verified = try ArchiveVerifier.verify(url)
        return ArchivedRun(path: relativePath, sha256: try ArchiveVerifier.sha256(of: url),
                           bytes: Int64((try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0),
                           members: verified)
    }

    private func readMembers(of relativePath: String) throws -> [(name: String, data: Data)] {
        let url = home.appendingPathComponent(relativePath)
        guard FileManager.default.fileExists(atPath: url.path) else { throw ArchiveFileMissing(path: relativePath) }
        let reader = try ArchiveReader(url: url)
        var members: [(name: String, data: Data)] = []
        while let entry = try reader.nextEntry() {
            guard entry.kind == .file else { continue }
            members.append((entry.name, try reader.readData()))
        }
        return members
    }

}

/// Checks an archive end to end: every member readable, and every hash the manifest
/// lists matching the member's bytes.
public enum ArchiveVerifier {
    public struct Mismatch: LeadFlowError, Equatable {
        public let path: String
        public let detail: String
        public var code: String { "archive.manifest_mismatch" }
        public var disposition: Disposition { .fatal }
        public var description: String { "\(code): \(path): \(detail)" }

        public init(path: String, detail: String) {
            self.path = path
            self.detail = detail
        }
    }

    /// Returns the number of members (the manifest included).
    @discardableResult
    public static func verify(_ url: URL) throws -> Int {
        let reader = try ArchiveReader(url: url)
        var hashes: [String: String] = [:]
        var manifest: Data?
        var count = 0
        while let entry = try reader.nextEntry() {
            count += 1
            guard entry.kind == .file else {
                throw Mismatch(path: url.path, detail: "member \(entry.name) is not a regular file")
            }
            var hasher = SHA256()
            var data = Data()
            let isManifest = entry.name == "manifest.json"
            try reader.readData { chunk in
                hasher.update(bufferPointer: chunk)
                if isManifest { data.append(contentsOf: chunk) }
            }
            if isManifest { manifest = data } else { hashes[entry.name] = hex(hasher.finalize()) }
        }
        guard let manifest,
              let object = try JSONSerialization.jsonObject(with: manifest) as? [String: Any],
              let listed = object["members"] as? [String: String] else {
            throw Mismatch(path: url.path, detail: "no readable manifest.json")
        }
        guard listed == hashes else {
            let wrong = Set(listed.keys).symmetricDifference(hashes.keys).union(listed.keys.filter { hashes[$0] != nil && hashes[$0] != listed[$0] })
            throw Mismatch(path: url.path, detail: "members differ from the manifest: \(wrong.sorted().prefix(5).joined(separator: ", "))")
        }
        return count
    }

    /// `verify`, and the file's SHA-256 compared with the one recorded when it was published.
    @discardableResult
    public static func verify(_ url: URL, recordedSHA256: String?) throws -> Int {
        let members = try verify(url)
        if let recordedSHA256, try sha256(of: url) != recordedSHA256 {
            throw Mismatch(path: url.path, detail: "the file's SHA-256 differs from the one recorded")
        }
        return members
    }

    public static func sha256(of url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hex(hasher.finalize())
    }

    static func hex(_ digest: SHA256.Digest) -> String { Hex.lowercase(digest) }
}

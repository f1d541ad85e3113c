import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `archive extract`: one open file, a new folder, no links, limits, a clear full disk.
@Suite struct ArchiveExtractorTests {
    let folder: URL
    init() throws { folder = try Repository.temporaryFolder("extract") }

    /// A raw Graph page, a nested non-ASCII name, a member big enough to span many chunks.
    func members() -> [(name: String, data: Data)] {
        var large = Data(count: 3 << 20)
        for index in large.indices { large[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 9) }
        return [("pages/form-1/page-0001.json", Data(#"{"data":[{"id":"1"}]}"#.utf8)),
                ("pages/form-1/page-0002.json", large),
                ("pages/formulário-ç/página.json", Data("{}".utf8))]
    }

    /// An archive as runs write it: through the product's TarArchiver.
    func productArchive() async throws -> URL {
        let spool = try Repository.temporaryFolder("extract-spool")
        var files: [(name: String, file: URL)] = []
        var hashes: [String: String] = [:]
        for (index, member) in members().enumerated() {
            let file = spool.appendingPathComponent("\(index)")
            try member.data.write(to: file)
            files.append((member.name, file))
            hashes[member.name] = try ArchiveVerifier.sha256(of: file)
        }
        let archiver = TarArchiver(home: folder, compression: .zstd)
        _ = try await archiver.archive(members: files, manifest: try manifest(hashes), relativePath: "archives/run-1.tar.zst")
        return folder.appendingPathComponent("archives/run-1.tar.zst")
    }

    func manifest(_ hashes: [String: String]) throws -> Data {
        try JSONSerialization.data(withJSONObject: ["members": hashes], options: [.sortedKeys])
    }

    func mode(_ url: URL) throws -> mode_t {
        var info = stat()
        #expect(lstat(url.path, &info) == 0, "\(url.path)")
        return info.st_mode & 0o7777
    }

    @Test func anArchiveTheProductWroteExtractsIdenticallyFiles0600Folders0700() async throws {
        let archive = try await productArchive()
        // Under the usual umask (022) files would be 0644 and folders 0755 unless set.
        let target = folder.appendingPathComponent("new/out")
        let written = try ArchiveExtractor.extract(archive, to: target)
        #expect(Set(written) == Set(members().map(\.name) + ["manifest.json"]))
        for (name, data) in members() {
            #expect(try Data(contentsOf: target.appendingPathComponent(name)) == data, "\(name)")
        }
        let hashes = try Dictionary(uniqueKeysWithValues: members().map { ($0.name, try ArchiveVerifier.sha256(of: target.appendingPathComponent($0.name))) })
        #expect(try Data(contentsOf: target.appendingPathComponent("manifest.json")) == (try manifest(hashes)))
        #expect(try mode(target) == 0o700)
        for path in try FileManager.default.subpathsOfDirectory(atPath: target.path) {
            let url = target.appendingPathComponent(path)
            var isFolder: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder))
            #expect(try mode(url) == (isFolder.boolValue ? 0o700 : 0o600), "\(path)")
        }
        // An existing empty folder is a new folder too.
        let empty = try Repository.temporaryFolder("extract-empty")
        #expect(try ArchiveExtractor.extract(archive, to: empty).count == 4)
    }

    /// The 2 GiB bomb, checked to be one: a 2 GiB member in under 100 KB.
    func zstdBomb() async throws -> URL {
        let bomb = try await ArchiveBombs.zstdTwoGiB()
        #expect(try FileManager.default.attributesOfItem(atPath: bomb.path)[.size] as? Int ?? .max < 100_000)
        let reader = try ArchiveReader(url: bomb)
        #expect(try reader.nextEntry()?.size == 2 << 30)
        return bomb
    }

    @Test func aTwoGigabyteZstdBombIsRefusedAfterABoundedReadAndNothingIsWritten() async throws {
        let bomb = try await zstdBomb()
        let target = folder.appendingPathComponent("out")

        // With the default limits its header alone is refused (2 GiB > the member limit).
        let declared = #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(bomb, to: target) }
        #expect(declared?.kind == .tooLarge)
        #expect(declared?.message.contains("2147483648 bytes") == true, "\(String(describing: declared))")
        #expect(!FileManager.default.fileExists(atPath: target.path))

        // With size limits above 2 GiB, the ratio refuses it while it is read, early.
        let generous = ArchiveExtractor.Limits(totalBytes: 4 << 30, memberBytes: 4 << 30, ratio: 200)
        let started = Date()
        let expanding = #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(bomb, to: target, limits: generous) }
        #expect(expanding?.kind == .tooLarge)
        let message = expanding?.message ?? ""
        #expect(message.contains("expands more than 200 times"), "\(message)")
        let read = Int64(message.split(separator: "(").last?.split(separator: " ").first ?? "") ?? .max
        #expect(read <= ArchiveExtractor.Limits.ratioGrace + (1 << 20), "refused after \(read) uncompressed bytes")
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(!FileManager.default.fileExists(atPath: target.path), "nothing written")
    }

    /// The 3 MiB member is over a 1 MiB limit, per member or in all: refused, nothing written.
    @Test(arguments: [("member", ArchiveExtractor.Limits(memberBytes: 1 << 20)), ("total", ArchiveExtractor.Limits(totalBytes: 1 << 20))])
    func anArchiveOverASizeLimitIsRefusedBeforeAnythingIsWritten(limit: String, limits: ArchiveExtractor.Limits) async throws {
        let archive = try await productArchive()
        let target = folder.appendingPathComponent("out")
        let error = #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(archive, to: target, limits: limits) }
        #expect(error?.kind == .tooLarge)
        #expect(error?.message.contains(limit == "member" ? "pages/form-1/page-0002.json holds 3145728 bytes" : "limit of 1048576 bytes") == true,
                "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: target.path))
    }

    @Test func aFolderThatIsNotEmptyIsRefusedAndLeftAsItWas() async throws {
        let archive = try await productArchive()
        let target = try Repository.temporaryFolder("extract-busy")
        try Data("mine".utf8).write(to: target.appendingPathComponent("notes.txt"))
        let error = #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(archive, to: target) }
        #expect(error?.kind == .targetRefused)
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == ["notes.txt"])
    }

    @Test(arguments: ["target", "parent"])
    func aSymbolicLinkAsTheTargetOrItsParentIsNotFollowed(placed: String) async throws {
        let archive = try await productArchive()
        let elsewhere = try Repository.temporaryFolder("extract-elsewhere")
        let link = folder.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: elsewhere)
        let target = placed == "target" ? link : link.appendingPathComponent("out")
        let error = #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(archive, to: target) }
        #expect(error?.kind == .targetRefused, "\(String(describing: error))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).isEmpty, "nothing written through the link")
    }

    @Test func anArchiveNamedThroughASymbolicLinkIsNotOpened() async throws {
        let archive = try await productArchive()
        let link = folder.appendingPathComponent("link.tar.zst")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: archive)
        let error = #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(link, to: folder.appendingPathComponent("out")) }
        #expect(error?.function == "open")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
    }

    /// A 1 MiB tmpfs fills up in the middle of the 3 MiB member: a clear error naming the
    /// member, and what was extracted is gone. Mounting needs root, which CI has.
    @Test(.enabled(if: geteuid() == 0, "mounting a small tmpfs needs root"))
    func aFullDiskIsAClearErrorAndLeavesNothingBehind() async throws {
        let archive = try await productArchive()
        let disk = try Repository.temporaryFolder("extract-full")
        let mounted = try await runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", disk.path])
        try #require(mounted.status == 0, "\(mounted.stderr)")
        defer { _ = umount(disk.path) }
        let target = disk.appendingPathComponent("out")
        let error = #expect(throws: ArchiveError.self) { try ArchiveExtractor.extract(archive, to: target) }
        #expect(error?.kind == .io)
        #expect(error?.message == "the disk is full while writing pages/form-1/page-0002.json: nothing more was extracted",
                "\(String(describing: error))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: disk.path).isEmpty, "what was extracted is removed")
    }
}

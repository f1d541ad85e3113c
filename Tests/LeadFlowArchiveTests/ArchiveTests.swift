import Foundation
import LeadFlowArchive
import LeadFlowTestSupport
import Testing

/// Real archives, read back by the adapter, GNU tar and bsdtar.
@Suite struct ArchiveTests {
    let folder: URL
    init() throws { folder = try Repository.temporaryFolder("archive") }

    /// A raw Graph page, a large member streamed from disk, and a non-ASCII name.
    func members() throws -> [(name: String, data: Data)] {
        let page = Data(#"{"data":[{"id":"1","created_time":"2026-11-01T12:34:56+0000"}],"paging":{"cursors":{"after":"QVFI"}}}"#.utf8)
        var large = Data(count: 3 << 20)
        for index in large.indices { large[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 9) }
        return [("pages/form-1/page-0001.json", page), ("pages/form-1/page-0002.json", large),
                ("pages/formulário-ç/página.json", Data("{}".utf8)), ("manifest.json", Data(#"{"members":3}"#.utf8))]
    }

    func writeArchive(_ compression: ArchiveCompression) throws -> URL {
        let url = folder.appendingPathComponent("run-1.\(compression.fileExtension)")
        let writer = try ArchiveWriter(publishingTo: url, compression: compression)
        for (name, data) in try members() {
            if data.count > 1 << 20 {
                let spooled = folder.appendingPathComponent("spool-\(UUID().uuidString)")
                try data.write(to: spooled)
                try writer.addFile(named: name, contentsOf: spooled)
            } else {
                try writer.addFile(named: name, contents: data)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: url.path), "nothing under the final name before publish")
        try writer.publish()
        return url
    }

    @Test(arguments: [ArchiveCompression.zstd, .gzip])
    func theAdapterReadsBackExactlyWhatItWrote(compression: ArchiveCompression) async throws {
        let url = try writeArchive(compression)
        let reader = try ArchiveReader(url: url)
        var read: [(String, Data)] = []
        while let entry = try reader.nextEntry() {
            #expect(entry.kind == .file)
            read.append((entry.name, try reader.readData()))
        }
        let expected = try members()
        #expect(read.map(\.0) == expected.map(\.name))
        #expect(read.map(\.1) == expected.map(\.data))
    }

    @Test(arguments: ["tar", "bsdtar"])
    func gnuTarAndBsdtarListAndExtractIt(tool: String) async throws {
        let url = try writeArchive(.zstd)
        let listing = try await runProgram(tool, ["-tf", url.path])
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect(listing.stdout.split(separator: "\n").map(String.init) == (try members()).map(\.name))

        let target = folder.appendingPathComponent("extracted-\(tool)")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let extraction = try await runProgram(tool, ["-xf", url.path, "-C", target.path])
        #expect(extraction.status == 0, "\(extraction.stderr)")
        for (name, data) in try members() {
            #expect(try Data(contentsOf: target.appendingPathComponent(name)) == data, "\(name)")
        }
    }

    @Test(arguments: [ArchiveCompression.zstd, .gzip, .none])
    func aTruncatedArchiveIsCorruptNotShorter(compression: ArchiveCompression) async throws {
        let url = try writeArchive(compression)
        let whole = try Data(contentsOf: url)
        for keep in [whole.count / 2, whole.count - 700] {
            let cut = folder.appendingPathComponent("cut-\(keep).\(compression.fileExtension)")
            try whole.prefix(keep).write(to: cut)
            let error = #expect(throws: ArchiveError.self) { try ArchiveReader.list(cut) }
            #expect(error?.kind == .corrupt, "kept \(keep) of \(whole.count) bytes")
        }
    }

    @Test func aWriterDroppedBeforePublishLeavesNothingBehind() async throws {
        let url = folder.appendingPathComponent("abandoned.tar.zst")
        do {
            let writer = try ArchiveWriter(publishingTo: url)
            try writer.addFile(named: "page.json", contents: Data("{}".utf8))
            #expect(FileManager.default.fileExists(atPath: writer.temporaryURL.path))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test(arguments: ["../escape.json", "/etc/passwd", "a//b", "./a", "", "a/../../b"])
    func unsafeMemberNamesAreRefused(name: String) async throws {
        let writer = try ArchiveWriter(publishingTo: folder.appendingPathComponent("x.tar.zst"))
        let error = #expect(throws: ArchiveError.self) { try writer.addFile(named: name, contents: Data()) }
        #expect(error?.kind == .invalidMember)
    }

    @Test func publishingReplacesNothingHalfWritten() async throws {
        // Two writers for the same final name: each publish is a whole archive.
        let url = folder.appendingPathComponent("same.tar.zst")
        for round in 1...2 {
            let writer = try ArchiveWriter(publishingTo: url)
            try writer.addFile(named: "round.txt", contents: Data("\(round)".utf8))
            try writer.publish()
            let reader = try ArchiveReader(url: url)
            _ = try reader.nextEntry()
            #expect(try reader.readData() == Data("\(round)".utf8))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["same.tar.zst"])
    }
}

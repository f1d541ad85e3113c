import Foundation
import LeadFlowTestSupport
import Testing

/// `leadflow archive extract` as an operator runs it: refusals are bad input (exit 64) and
/// write nothing. It needs no database.
@Suite struct ArchiveExtractCommandTests {
    func extract(_ arguments: [String]) async throws -> ProcessResult {
        try await runProgram(LeadFlowBinary.path, ["archive", "extract"] + arguments)
    }

    @Test func aTwoGigabyteZstdBombIsRefusedWithExitSixtyFourAndNothingWritten() async throws {
        let bomb = try await ArchiveBombs.zstdTwoGiB()
        let target = try Repository.temporaryFolder("extract-cli").appendingPathComponent("out")

        let declared = try await extract([bomb.path, "--to", target.path])
        #expect(declared.status == 64, "\(declared.stderr)")
        #expect(declared.stderr.contains("archive.too_large"), "\(declared.stderr)")
        #expect(!FileManager.default.fileExists(atPath: target.path))

        // Size limits raised past 2 GiB: the ratio limit refuses it while reading.
        let expanding = try await extract([bomb.path, "--to", target.path, "--max-bytes", "4294967296", "--max-member-bytes", "4294967296"])
        #expect(expanding.status == 64, "\(expanding.stderr)")
        #expect(expanding.stderr.contains("expands more than 200 times"), "\(expanding.stderr)")
        #expect(!FileManager.default.fileExists(atPath: target.path))
    }

    @Test func aFolderThatIsNotNewIsRefusedWithExitSixtyFour() async throws {
        let work = try Repository.temporaryFolder("extract-cli")
        try Data("x".utf8).write(to: work.appendingPathComponent("x"))
        let archive = work.appendingPathComponent("plain.tar")
        #expect(try await runProgram("tar", ["-cf", archive.path, "x"], in: work).status == 0)
        let busy = try Repository.temporaryFolder("extract-cli-busy")
        try Data("mine".utf8).write(to: busy.appendingPathComponent("notes.txt"))

        let refused = try await extract([archive.path, "--to", busy.path])
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("not empty"), "\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: busy.path) == ["notes.txt"])

        let fresh = work.appendingPathComponent("fresh")
        let extracted = try await extract([archive.path, "--to", fresh.path])
        #expect(extracted.status == 0, "\(extracted.stderr)")
        #expect(try Data(contentsOf: fresh.appendingPathComponent("x")) == Data("x".utf8))

        #expect(try await extract([archive.path, "--to", work.appendingPathComponent("other").path, "--max-ratio", "0"]).status == 64)
    }
}

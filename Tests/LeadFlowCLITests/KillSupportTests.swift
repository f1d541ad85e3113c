import LeadFlowCore
import LeadFlowTestSupport
import Testing

/// The pieces the kill tests rest on: a seed replays its instants, and progress lines map
/// to the stage a kill landed in.
@Suite struct KillSupportTests {
    @Test func aSeedGivesSplitMix64sSequenceEveryTime() {
        // SplitMix64's published first outputs for seed 0.
        var generator = SeededGenerator(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
        var again = SeededGenerator(seed: 42), replayed = SeededGenerator(seed: 42)
        let instants = (0..<5).map { _ in Double.random(in: 0.05...3, using: &again) }
        #expect(instants == (0..<5).map { _ in Double.random(in: 0.05...3, using: &replayed) })
    }

    @Test func theFurthestStageAnyConnectionReachedCounts() {
        let stderr = """
            2026-12-01T10:37:04+0000 notice leadflow.run: [leadflow] acme-1001: checking the token
            2026-12-01T10:37:04+0000 notice leadflow.run: [leadflow] acme-1001: scheduled: reading 3 forms
            2026-12-01T10:37:05+0000 notice leadflow.run: [leadflow] acme-1001: archiving 12 pages
            2026-12-01T10:37:05+0000 notice leadflow.run: [leadflow] acme-1002: scheduled: reading 1 form
            leadflow: debug kill at archive.written

            """
        #expect(PassStage.reached(in: stderr) == .archive)
        #expect(PassStage.reached(in: "acme-1001: checking the token\n") == .starting)
        #expect(PassStage.reached(in: stderr + "acme-1002: loading\n") == .load)
        #expect(Killed.byPoint(DebugKill.archive, ProcessResult(status: Killed.status, stdout: "", stderr: stderr)))
        #expect(!Killed.byPoint(DebugKill.copy, ProcessResult(status: Killed.status, stdout: "", stderr: stderr)))
    }
}

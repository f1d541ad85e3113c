import Foundation

/// SplitMix64: a small generator whose whole sequence follows from its seed, so a test that
/// picks instants with it can be replayed exactly (`LEADFLOW_TEST_SEED=<seed>`).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public let seed: UInt64
    private var state: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    /// The seed from `LEADFLOW_TEST_SEED` when set (to replay a failure), else a fresh one.
    /// Either way the test prints it: a failure without its seed cannot be replayed.
    public static func fromEnvironment() -> SeededGenerator {
        if let text = ProcessInfo.processInfo.environment["LEADFLOW_TEST_SEED"] {
            guard let seed = UInt64(text) else { preconditionFailure("LEADFLOW_TEST_SEED is not a UInt64: \(text)") }
            return SeededGenerator(seed: seed)
        }
        var system = SystemRandomNumberGenerator()
        return SeededGenerator(seed: system.next())
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

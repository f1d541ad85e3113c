import Foundation
import LeadFlowCore

/// `leadflow key rotate`: every stored token (and notification address) sealed again under a
/// new token key, the old key kept until none refers to it.
///
/// Crash-safe at every step: the new key is written beside the key file first (and a killed
/// rotation's is reused, since tokens may be sealed under it already); each connection is
/// re-sealed in a statement of its own that records the key id; the old key is retired only
/// in a transaction that finds no secret under it, and its file replaced (an atomic rename)
/// only after. Until then every command opens with both keys, so runs go on throughout,
/// and a rerun after a kill finishes the job.
public struct KeyRotator {
    let repository: any SealedSecretRepository
    let files: any TokenKeyRotationFiles

    public init(repository: any SealedSecretRepository, files: any TokenKeyRotationFiles) {
        self.repository = repository
        self.files = files
    }

    public struct Summary: Sendable, Equatable {
        /// The key every secret is sealed under now.
        public var keyID = ""
        /// The keys removed.
        public var retired: [String] = []
        /// Connections sealed again by this call (a rerun counts only what was left).
        public var resealed = 0
        /// Connections sealed under a key neither file holds: they cannot be opened, so
        /// they stay as they are until their Page is reconnected.
        public var unreadable: [Int64] = []
    }

    /// A connect that sealed under the old key while the rotation ran is re-sealed in the
    /// next pass; after this many passes something keeps writing old-key secrets.
    static let passes = 5

    public func rotate(now: Date) async throws -> Summary {
        try await repository.lockRotation()
        do {
            let summary = try await rotateLocked(now: now)
            try? await repository.unlockRotation()
            return summary
        } catch {
            try? await repository.unlockRotation()
            throw error
        }
    }

    private func rotateLocked(now: Date) async throws -> Summary {
        let (sealer, retiring) = try files.begin()
        var summary = Summary()
        summary.keyID = sealer.keyID
        summary.retired = retiring.sorted()
        for _ in 0..<Self.passes {
            var unreadable: [Int64] = []
            for stored in try await repository.sealed(notUnder: sealer.keyID) {
                let known = [stored.tokenKeyID, stored.addressKeyID].compactMap { $0 }.allSatisfy { $0 == sealer.keyID || retiring.contains($0) }
                guard known else {
                    unreadable.append(stored.connectionID)
                    continue
                }
                // Another command changed the row meanwhile: the next pass sees it as it is now.
                if try await repository.replace(stored, with: try stored.resealed(by: sealer)) { summary.resealed += 1 }
            }
            summary.unreadable = unreadable
            if try await repository.retire(retiring, at: now) == 0 {
                try files.finish()
                return summary
            }
        }
        throw RotationUnfinished(passes: Self.passes)
    }
}

/// Tokens kept appearing under the old key while the rotation ran (a connect in a loop?).
public struct RotationUnfinished: LeadFlowError {
    public let passes: Int
    public var code: String { "secrets.rotation_unfinished" }
    public var disposition: Disposition { .retry }
    public var description: String {
        "\(code): after \(passes) passes tokens were still being sealed under the old key; both keys are kept and every command works: run `leadflow key rotate` again"
    }
}

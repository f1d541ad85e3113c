import Foundation
import LeadFlowCore

/// `leadflow archive prune`: removes the archive files older than a retention, except those
/// the gap report still needs (`ArchiveRepository.pruneCandidates`), each verified against
/// its record first, and records what it did; the rows stay, marked pruned.
///
/// The record commits before the files go: a prune cut short leaves files of archives
/// marked pruned, which the next prune removes first. The other order would leave rows
/// that name files no longer there, which `archive verify --all` would report as broken.
public struct ArchivePruner: Sendable {
    let repository: any ArchiveRepository
    let archiver: any RawArchiver

    public init(repository: any ArchiveRepository, archiver: any RawArchiver) {
        self.repository = repository
        self.archiver = archiver
    }

    /// What a prune did (or, dry, would do). Field names are `--json`'s keys.
    public struct Outcome: Sendable, Equatable, Encodable {
        public struct Refused: Sendable, Equatable, Encodable {
            public let path: String
            public let reason: String
        }
        public var cutoff: String
        public var dry_run: Bool
        public var removed = 0
        public var bytes_freed: Int64 = 0
        /// Older than the cutoff, kept: they hold rejected leads Integrate never loaded.
        public var kept = 0
        /// Recorded, but their file is not on this host (another host's disk, or lost): left
        /// listed, not marked pruned, so an erasure still finds them (pending where unreadable).
        public var already_missing = 0
        /// Files of earlier prunes that were still on disk, removed now.
        public var leftovers_removed = 0
        /// Files that do not match their record: left in place (exit 1).
        public var refused: [Refused] = []
    }

    public func prune(olderThan cutoff: Date, now: Date, host: String, dryRun: Bool) async throws -> Outcome {
        var outcome = Outcome(cutoff: UTCTime.iso8601(cutoff), dry_run: dryRun)
        if !dryRun {
            for path in try await repository.prunedPaths() where await archiver.exists(path) {
                try await archiver.remove(path)
                outcome.leftovers_removed += 1
            }
        }
        let (candidates, kept) = try await repository.pruneCandidates(createdBefore: cutoff)
        outcome.kept = kept
        var removing: [ArchiveFile] = []
        var missing: [ArchiveFile] = []
        for archive in candidates {
            guard await archiver.exists(archive.path) else {
                missing.append(archive)
                continue
            }
            do {
                _ = try await archiver.verify(archive.path, sha256: archive.sha256)
                removing.append(archive)
            } catch {
                outcome.refused.append(.init(path: archive.path, reason: (error as? any LeadFlowError)?.description ?? "\(error)"))
            }
        }
        outcome.removed = removing.count
        outcome.already_missing = missing.count
        outcome.bytes_freed = removing.reduce(0) { $0 + $1.bytes }
        guard !dryRun else { return outcome }
        try await repository.recordPrune(ArchivePruneRecord(
            // A file this host does not see may be on another host's disk: marked pruned, an
            // erasure would skip it and leave the person there. It stays listed for a host that sees it.
            cutoff: cutoff, at: now, host: host, removed: removing.map(\.id), bytes: outcome.bytes_freed, kept: kept,
            alreadyMissing: missing.count, refused: outcome.refused.count))
        for archive in removing { try await archiver.remove(archive.path) }
        return outcome
    }
}

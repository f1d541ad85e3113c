import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// The `archives` table as `leadflow archive list`, `verify` and `prune` read it.
public struct ArchiveStore: ArchiveRepository {
    let session: PostgresSession

    public init(_ session: PostgresSession) {
        self.session = session
    }

    /// One archive, as `archive list --json` prints it.
    public struct Row: Sendable, Equatable, Encodable {
        public let id: Int64
        public let connection: String
        public let run_id: Int64
        public let path: String
        public let sha256: String
        public let members: Int
        public let bytes: Int64
        public let created_at: String
        /// Set once `archive prune` removed its file; the row stays (leads name it).
        public let pruned_at: String?
    }

    /// Every archive in force (not superseded by an erasure's rewrite), pruned ones too.
    public func list() async throws -> [Row] {
        try await session.run { db in
            try db.query("""
                SELECT a.id, c.label, a.run_id, a.path, a.sha256, a.members, a.bytes, a.created_at, a.pruned_at
                FROM archives a JOIN connections c ON c.id = a.connection_id WHERE a.superseded_by IS NULL ORDER BY a.id
                """, label: "list archives").all.map { row in
                Row(id: Int64(try row.int(0)!), connection: try row.string(1)!, run_id: Int64(try row.int(2)!), path: try row.string(3)!,
                    sha256: try row.string(4)!, members: try row.int(5) ?? 0, bytes: Int64(try row.int(6) ?? 0),
                    created_at: UTCTime.iso8601(try row.date(7)!), pruned_at: try row.date(8).map(UTCTime.iso8601))
            }
        }
    }

    /// The archives whose files should be on disk: in force and not pruned.
    public func onDisk() async throws -> [ArchiveFile] {
        try await session.run { db in
            try db.query("SELECT id, path, sha256, bytes FROM archives WHERE superseded_by IS NULL AND pruned_at IS NULL ORDER BY id",
                         label: "archives on disk").all.map(Self.file)
        }
    }

    static func file(_ row: PostgresRow) throws -> ArchiveFile {
        ArchiveFile(id: Int64(try row.int(0)!), path: try row.string(1)!, sha256: try row.string(2)!, bytes: Int64(try row.int(3) ?? 0))
    }

    /// Archives created before `cutoff`, in force. Kept among them: each archive that holds
    /// a rejected lead Integrate never loaded (the gap report counts it under "rejected",
    /// and its raw payload, which only the archive keeps, is what anyone fixing the mapping
    /// reloads from). Nothing else the report reads is in an archive (it counts leads, void
    /// periods and Facebook's form counters), and erasure needs only the tombstones and the
    /// archives still on disk.
    public func pruneCandidates(createdBefore cutoff: Date) async throws -> (removable: [ArchiveFile], kept: Int) {
        try await session.run { db in
            let rows = try db.query("""
                WITH needed AS (
                    SELECT DISTINCT x.archive_id FROM lead_rejections x
                    WHERE x.archive_id IS NOT NULL
                      AND (x.lead_id IS NULL OR NOT EXISTS (SELECT 1 FROM leads l WHERE l.instance = x.instance AND l.lead_id = x.lead_id))
                )
                SELECT a.id, a.path, a.sha256, a.bytes, a.id IN (SELECT archive_id FROM needed)
                FROM archives a WHERE a.superseded_by IS NULL AND a.pruned_at IS NULL AND a.created_at < $1 ORDER BY a.id
                """, [cutoff], label: "archives to prune").all
            var removable: [ArchiveFile] = []
            var kept = 0
            for row in rows {
                if try row.bool(4) == true { kept += 1 } else { removable.append(try Self.file(row)) }
            }
            return (removable, kept)
        }
    }

    public func recordPrune(_ record: ArchivePruneRecord) async throws {
        try await session.run { db in
            try db.transaction { db in
                if !record.removed.isEmpty {
                    try db.query("UPDATE archives SET pruned_at = $2 WHERE id IN (SELECT unnest($1::text[])::bigint) AND pruned_at IS NULL",
                                 [record.removed.map(String.init), record.at], label: "mark archives pruned")
                }
                try db.query("""
                    INSERT INTO prunes (kind, cutoff, pruned_at, host, removed, kept, bytes, details)
                    VALUES ('archives', $1, $2, $3, $4, $5, $6, jsonb_build_object('already_missing', $7::int, 'refused', $8::int))
                    """, [record.cutoff, record.at, record.host, record.removed.count, record.kept, record.bytes, record.alreadyMissing,
                          record.refused], label: "record prune")
            }
        }
    }

    public func prunedPaths() async throws -> [String] {
        try await session.run { db in
            try db.query("SELECT path FROM archives WHERE pruned_at IS NOT NULL AND superseded_by IS NULL ORDER BY id",
                         label: "pruned archives").all.map { try $0.string(0)! }
        }
    }
}

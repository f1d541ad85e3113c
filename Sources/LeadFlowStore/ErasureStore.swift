import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// The rows of `leadflow erase`: tombstones, the leads and rejections to delete, and the
/// archives an erasure rewrites.
public struct ErasureStore: ErasureRepository {
    /// Every query runs on the session's own thread, never on the cooperative pool.
    let session: PostgresSession

    public init(_ session: PostgresSession) {
        self.session = session
    }

    /// Advisory lock space for erasures.
    static let erasureLockSpace: Int32 = 0x4C47

    public func lockErasures() async throws {
        try await session.run { db in
            _ = try db.query("SELECT pg_advisory_lock($1, 0)", [Int(Self.erasureLockSpace)], label: "lock erasures")
        }
    }

    public func unlockErasures() async throws {
        try await session.run { db in
            _ = try db.query("SELECT pg_advisory_unlock($1, 0)", [Int(Self.erasureLockSpace)], label: "unlock erasures")
        }
    }

    /// Returns once every connection lease live at the call has ended: released, lapsed
    /// (a frozen or stalled worker's ends with its lease) or taken over.
    public func waitForRunsInFlight() async throws {
        let live = try await session.run { db in
            try db.query("SELECT connection_id, fence FROM connection_leases WHERE lease_until >= clock_timestamp()",
                         label: "live connection leases").all.map { (Int64(try $0.int(0)!), Int64(try $0.int(1)!)) }
        }
        var waiting = live
        while !waiting.isEmpty {
            try await Task.sleep(for: .milliseconds(200))
            let (ids, fences) = (waiting.map { String($0.0) }, waiting.map { String($0.1) })
            let still = try await session.run { db in
                try db.query("""
                    SELECT l.connection_id, l.fence FROM connection_leases l
                    JOIN unnest($1::bigint[], $2::bigint[]) AS w(connection_id, fence) USING (connection_id, fence)
                    WHERE l.lease_until >= clock_timestamp()
                    """, [ids, fences], label: "leases still live").all.map { (Int64(try $0.int(0)!), Int64(try $0.int(1)!)) }
            }
            waiting = still
        }
    }

    public func addTombstones(_ tombstones: [(kind: String, hash: String)], keyID: String, instance: String?, at: Date) async throws {
        try await session.run { db in
            for tombstone in tombstones {
                try db.query("""
                    INSERT INTO erasures (subject_kind, subject_hash, instance, requested_at, key_id) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (subject_kind, subject_hash, coalesce(instance, '')) DO NOTHING
                    """, [tombstone.kind, tombstone.hash, instance, at, keyID], label: "add tombstone")
            }
        }
    }

    public func leadIDs(email: String?, leadID: String?, instance: String?) async throws -> Set<String> {
        try await session.run { db in
            Set(try db.query("""
                SELECT lead_id FROM leads WHERE (email = $1 OR lead_id = $2) AND ($3::text IS NULL OR instance = $3)
                UNION SELECT lead_id FROM lead_rejections WHERE lead_id = $2 AND ($3::text IS NULL OR instance = $3)
                """, [email, leadID, instance], label: "leads of the person").all.compactMap { try $0.string(0) })
        }
    }

    public func currentArchives(instance: String?) async throws -> [(id: Int64, path: String)] {
        try await session.run { db in
            try db.query("""
                SELECT a.id, a.path FROM archives a JOIN connections c ON c.id = a.connection_id
                -- A pruned archive's file is gone, and with it every raw lead it held: nothing to rewrite.
                WHERE a.superseded_by IS NULL AND a.pruned_at IS NULL AND ($1::text IS NULL OR c.instance = $1) ORDER BY a.id
                """, [instance], label: "current archives").all.map {
                (Int64(try $0.int(0)!), try $0.string(1)!)
            }
        }
    }

    public func pendingErasures() async throws -> [PendingArchiveErasure] {
        try await session.run { db in
            var byArchive: [Int64: PendingArchiveErasure] = [:]
            var order: [Int64] = []
            for row in try db.query("""
                SELECT p.archive_id, a.path, c.label, p.reason, p.requested_at, p.key_id, p.hashes
                FROM erasure_pending p JOIN archives a ON a.id = p.archive_id JOIN connections c ON c.id = a.connection_id
                ORDER BY p.id
                """, label: "pending erasures").all {
                let archiveID = Int64(try row.int(0)!)
                var hashes = byArchive[archiveID]?.hashes ?? [:]
                // Hex hashes: the text[] literal has no quoting to undo.
                hashes[try row.string(5)!, default: []].formUnion(parseTextArray(try row.string(6) ?? "{}"))
                let first = byArchive[archiveID]
                if first == nil { order.append(archiveID) }
                let requested = try row.date(4)!
                // The latest reason (the archive may have moved from missing to unreadable), the first instant.
                byArchive[archiveID] = PendingArchiveErasure(archiveID: archiveID, path: try row.string(1)!, connection: try row.string(2)!,
                                                             reason: try row.string(3)!, since: first?.since ?? requested, hashes: hashes)
            }
            return order.map { byArchive[$0]! }
        }
    }

    public func clearPendingErasures(archiveID: Int64) async throws {
        try await session.run { db in
            _ = try db.query("DELETE FROM erasure_pending WHERE archive_id = $1", [archiveID], label: "pending erasures done")
        }
    }

    public func replaceArchive(_ oldID: Int64, with new: ArchivedRun, at: Date) async throws {
        try await session.run { db in
            try db.transaction { db in
                let newID = try db.query("""
                    INSERT INTO archives (run_id, connection_id, path, sha256, bytes, members, window_from, window_to, created_at, verified_at)
                    SELECT run_id, connection_id, $2, $3, $4, $5, window_from, window_to, greatest($6, created_at), greatest($6, created_at)
                    FROM archives WHERE id = $1 RETURNING id
                    """, [oldID, new.path, new.sha256, new.bytes, new.members, at], label: "record rewritten archive")[0].int(0)!
                let superseded = try db.query("UPDATE archives SET superseded_by = $2 WHERE id = $1 AND superseded_by IS NULL RETURNING id",
                                              [oldID, newID], label: "supersede archive")
                guard superseded.count == 1 else { throw ArchiveAlreadySuperseded(archiveID: oldID) }
                try db.query("UPDATE leads SET archive_id = $2 WHERE archive_id = $1", [oldID, newID], label: "repoint leads")
                try db.query("UPDATE lead_rejections SET archive_id = $2 WHERE archive_id = $1", [oldID, newID], label: "repoint rejections")
                // The rewrite took out what erasures pending on the old archive were waiting for.
                try db.query("DELETE FROM erasure_pending WHERE archive_id = $1", [oldID], label: "pending erasures done")
            }
        }
    }

    public func deleteLeads(_ ids: Set<String>, instance: String?, tombstones: [String], archivesRewritten: Int,
                            pending: [(archiveID: Int64, reason: String)], pendingHashes: Set<String>, keyID: String,
                            at: Date) async throws -> (leads: Int, rejections: Int) {
        let hashes = pendingHashes.sorted()
        return try await session.run { db in
            try db.transaction { db in
                let array = Array(ids)
                let leads = try db.query("""
                    WITH d AS (DELETE FROM leads WHERE lead_id = ANY($1) AND ($2::text IS NULL OR instance = $2)
                               RETURNING instance, form_id, lead_id),
                         w AS (INSERT INTO withheld_leads (instance, form_id, lead_id, reason, withheld_at)
                               SELECT instance, form_id, lead_id, 'erased', now() FROM d ON CONFLICT (instance, lead_id) DO NOTHING)
                    SELECT count(*) FROM d
                    """, [array, instance], label: "delete leads")[0].int(0) ?? 0
                let rejections = try db.query("""
                    WITH d AS (DELETE FROM lead_rejections WHERE lead_id = ANY($1) AND ($2::text IS NULL OR instance = $2)
                               RETURNING instance, form_id, lead_id),
                         w AS (INSERT INTO withheld_leads (instance, form_id, lead_id, reason, withheld_at)
                               SELECT DISTINCT instance, form_id, lead_id, 'erased', now() FROM d WHERE lead_id IS NOT NULL
                               ON CONFLICT (instance, lead_id) DO NOTHING)
                    SELECT count(*) FROM d
                    """, [array, instance], label: "delete rejections")[0].int(0) ?? 0
                try db.query("""
                    UPDATE erasures SET leads_deleted = leads_deleted + $2, archives_rewritten = archives_rewritten + $3
                    WHERE subject_hash = ANY($1)
                    """, [tombstones, leads + rejections, archivesRewritten], label: "count erasure")
                for archive in pending where !hashes.isEmpty {
                    try db.query("""
                        INSERT INTO erasure_pending (archive_id, key_id, hashes, reason, requested_at) VALUES ($1, $2, $3, $4, $5)
                        """, [archive.archiveID, keyID, hashes, archive.reason, at], label: "record pending erasure")
                }
                return (leads, rejections)
            }
        }
    }
}

/// The archive an erasure rewrote was rewritten meanwhile by another: nothing committed;
/// running the erasure again works on the archive now in force.
public struct ArchiveAlreadySuperseded: LeadFlowError {
    public let archiveID: Int64
    public var code: String { "erasure.archive_superseded" }
    public var disposition: Disposition { .fatal }
    public var description: String { "archive \(archiveID) was rewritten by another erasure meanwhile; run the erasure again" }
}

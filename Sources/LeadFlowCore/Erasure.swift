import Foundation

/// Keyed hashes for erasure tombstones, under the erasure key: a key of its own, kept in a
/// file beside the token key (`ErasureKey`), so rotating or losing the token key never
/// changes what a tombstone matches.
public protocol ErasureHasher: Sendable {
    /// A short fingerprint of the key (not the key), stored on every tombstone.
    var keyID: String { get }
    /// `HMAC-SHA256(key, subject)`, lower-case hex.
    func hash(_ subject: String) -> String
}

/// The people erased, as keyed hashes of who they are: their e-mail (trimmed, lower-cased)
/// and their lead ids. A hash is `HMAC-SHA256(key, "email:<address>")` or `"lead:<id>"`
/// under the erasure key, so the `erasures` table names nobody and cannot be reversed by
/// hashing a list of addresses.
public struct ErasureList: Sendable {
    public let hashes: Set<String>
    let hasher: (any ErasureHasher)?

    public init(hashes: Set<String>, hasher: any ErasureHasher) {
        self.hashes = hashes
        self.hasher = hasher
    }

    /// Tombstones as the database holds them, by the id of the key each was written under:
    /// every one must be under `hasher`'s key, or it could never match and the person would
    /// come back (`ErasureKeyMismatch`).
    public init(tombstones: [String: Set<String>], hasher: any ErasureHasher) throws {
        let foreign = tombstones.filter { $0.key != hasher.keyID && !$0.value.isEmpty }
        guard foreign.isEmpty else {
            throw ErasureKeyMismatch(tombstoneKeyIDs: foreign.keys.sorted(), tombstones: foreign.values.reduce(0) { $0 + $1.count },
                                     keyInUse: hasher.keyID)
        }
        self.init(hashes: tombstones[hasher.keyID] ?? [], hasher: hasher)
    }

    private init() {
        hashes = []
        hasher = nil
    }

    public static let none = ErasureList()

    public static func subject(email: String) -> String { "email:" + normalized(email) }
    public static func subject(leadID: String) -> String { "lead:" + leadID }
    public static func normalized(_ email: String) -> String { email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() }

    /// The list with more hashes under the same key.
    public func adding(_ more: Set<String>) -> ErasureList {
        guard let hasher else { return self }
        return ErasureList(hashes: hashes.union(more), hasher: hasher)
    }

    /// Whether a raw lead belongs to an erased person: by its id, or by any e-mail it holds.
    public func contains(_ lead: GraphLead) -> Bool {
        guard !hashes.isEmpty, let hasher else { return false }
        if hashes.contains(hasher.hash(Self.subject(leadID: lead.id))) { return true }
        return lead.fieldData.contains { field in
            field.values.contains { $0.contains("@") && hashes.contains(hasher.hash(Self.subject(email: $0))) }
        }
    }
}

/// Tombstones written under an erasure key other than the one in use: they would match
/// nobody, and the people they erased would come back with the next run or backfill.
public struct ErasureKeyMismatch: LeadFlowError, Equatable {
    public let tombstoneKeyIDs: [String]
    public let tombstones: Int
    public let keyInUse: String
    public var code: String { "secrets.erasure_key_mismatch" }
    public var disposition: Disposition { .fatal }
    public var description: String {
        "\(code): \(tombstones) erasure tombstone\(tombstones == 1 ? " was" : "s were") written under erasure key "
            + "\(tombstoneKeyIDs.joined(separator: ", ")), but the erasure key in use is \(keyInUse): restore the original erasure key file "
            + "(nothing was read or loaded: erased people would have come back)"
    }

    public init(tombstoneKeyIDs: [String], tombstones: Int, keyInUse: String) {
        self.tombstoneKeyIDs = tombstoneKeyIDs
        self.tombstones = tombstones
        self.keyInUse = keyInUse
    }
}

/// Raw Graph pages with some leads taken out (an erasure, or a person erased before the
/// page was archived). Everything else in the page is kept.
public enum RawPage {
    /// The page without the leads whose id is in `ids`, and how many were removed; the
    /// body unchanged when none was.
    public static func removing(_ ids: Set<String>, from body: Data) throws -> (body: Data, removed: Int) {
        guard var object = try JSONSerialization.jsonObject(with: body) as? [String: Any],
              let data = object["data"] as? [[String: Any]] else { return (body, 0) }
        let kept = data.filter { lead in !((lead["id"] as? String).map(ids.contains) ?? false) }
        guard kept.count < data.count else { return (body, 0) }
        object["data"] = kept
        return (try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), data.count - kept.count)
    }
}

/// An archive an erasure could not rewrite on this host (its file is on another host's
/// disk, or unreadable): the person's rows are gone, their raw leads wait in it until a later
/// `leadflow erase` or `leadflow archive verify --repair`, on a host that can read it, takes
/// them out. The row names nobody: what to take out is keyed hashes.
public struct PendingArchiveErasure: Sendable, Equatable {
    public let archiveID: Int64
    /// Relative to LEADFLOW_HOME.
    public let path: String
    /// The connection's label.
    public let connection: String
    /// Why it could not be rewritten, in words that hold no personal data.
    public let reason: String
    /// When the first erasure still waiting on it was recorded.
    public let since: Date
    /// Keyed hashes (of e-mails and lead ids) of the leads to take out, by erasure key id.
    public let hashes: [String: Set<String>]

    public init(archiveID: Int64, path: String, connection: String, reason: String, since: Date, hashes: [String: Set<String>]) {
        self.archiveID = archiveID
        self.path = path
        self.connection = connection
        self.reason = reason
        self.since = since
        self.hashes = hashes
    }
}

/// Where erasures are recorded and carried out (Postgres: `ErasureStore`).
public protocol ErasureRepository: Sendable {
    /// One erasure at a time (a session lock), so two never rewrite the same archive.
    func lockErasures() async throws
    func unlockErasures() async throws
    /// Waits until no run is inside a connection (each connection's lock taken and given
    /// back): a run that started before the tombstone has then published what it read.
    func waitForRunsInFlight() async throws
    /// Tombstones (kind `email` or `lead_id`, keyed hash under erasure key `keyID`) for one
    /// instance (nil: every instance), kept whatever happens next.
    func addTombstones(_ tombstones: [(kind: String, hash: String)], keyID: String, instance: String?, at: Date) async throws
    /// Lead ids loaded for this e-mail (normalised) or this id, in this instance (nil: any).
    func leadIDs(email: String?, leadID: String?, instance: String?) async throws -> Set<String>
    /// The archives in force (not superseded) of this instance's connections (nil: all):
    /// id and path relative to LEADFLOW_HOME.
    func currentArchives(instance: String?) async throws -> [(id: Int64, path: String)]
    /// Archives earlier erasures could not rewrite, oldest first.
    func pendingErasures() async throws -> [PendingArchiveErasure]
    /// One transaction: the new archive recorded, the old one superseded by it (it must
    /// still be current), every lead and rejection that pointed at the old one pointed at
    /// the new one, and the erasures pending on the old one done.
    func replaceArchive(_ oldID: Int64, with new: ArchivedRun, at: Date) async throws
    /// The erasures pending on an archive are done: it holds none of their leads.
    func clearPendingErasures(archiveID: Int64) async throws
    /// One transaction: deletes the leads and rejections with these ids, in this instance
    /// (nil: every instance); counts them on the tombstones; records the archives that
    /// could not be rewritten as pending, with the keyed hashes of what to take out of them.
    func deleteLeads(_ ids: Set<String>, instance: String?, tombstones: [String], archivesRewritten: Int,
                     pending: [(archiveID: Int64, reason: String)], pendingHashes: Set<String>, keyID: String,
                     at: Date) async throws -> (leads: Int, rejections: Int)
}

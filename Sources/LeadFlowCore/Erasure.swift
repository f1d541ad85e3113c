import Foundation

/// The people erased, as keyed hashes of who they are: their e-mail (trimmed, lower-cased)
/// and their lead ids. A hash is `HMAC-SHA256(key, "email:<address>")` or `"lead:<id>"`
/// under a key derived from the token key, so the `erasures` table names nobody and cannot
/// be reversed by hashing a list of addresses.
public struct ErasureList: Sendable {
    public let hashes: Set<String>
    let hash: @Sendable (String) -> String

    public init(hashes: Set<String>, hash: @escaping @Sendable (String) -> String) {
        self.hashes = hashes
        self.hash = hash
    }

    public static let none = ErasureList(hashes: [], hash: { _ in "" })

    public static func subject(email: String) -> String { "email:" + normalized(email) }
    public static func subject(leadID: String) -> String { "lead:" + leadID }
    public static func normalized(_ email: String) -> String { email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() }

    /// Whether a raw lead belongs to an erased person: by its id, or by any e-mail it holds.
    public func contains(_ lead: GraphLead) -> Bool {
        guard !hashes.isEmpty else { return false }
        if hashes.contains(hash(Self.subject(leadID: lead.id))) { return true }
        return lead.fieldData.contains { field in
            field.values.contains { $0.contains("@") && hashes.contains(hash(Self.subject(email: $0))) }
        }
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

/// Where erasures are recorded and carried out (Postgres: `ErasureStore`).
public protocol ErasureRepository: Sendable {
    /// One erasure at a time (a session lock), so two never rewrite the same archive.
    func lockErasures() async throws
    func unlockErasures() async throws
    /// Waits until no run is inside a connection (each connection's lock taken and given
    /// back): a run that started before the tombstone has then published what it read.
    func waitForRunsInFlight() async throws
    /// Tombstones (kind `email` or `lead_id`, keyed hash) for one instance (nil: every
    /// instance), kept whatever happens next.
    func addTombstones(_ tombstones: [(kind: String, hash: String)], instance: String?, at: Date) async throws
    /// Lead ids loaded for this e-mail (normalised) or this id, in this instance (nil: any).
    func leadIDs(email: String?, leadID: String?, instance: String?) async throws -> Set<String>
    /// The archives in force (not superseded) of this instance's connections (nil: all):
    /// id and path relative to LEADFLOW_HOME.
    func currentArchives(instance: String?) async throws -> [(id: Int64, path: String)]
    /// Paths of superseded archives, whose files an interrupted erasure may have left.
    func supersededArchivePaths() async throws -> [String]
    /// One transaction: the new archive recorded, the old one superseded by it (it must
    /// still be current), and every lead and rejection that pointed at the old one pointed
    /// at the new one.
    func replaceArchive(_ oldID: Int64, with new: ArchivedRun, at: Date) async throws
    /// Deletes the leads and rejections with these ids, in this instance (nil: every
    /// instance); counts them on the tombstones.
    func deleteLeads(_ ids: Set<String>, instance: String?, tombstones: [String], archivesRewritten: Int) async throws -> (leads: Int, rejections: Int)
}

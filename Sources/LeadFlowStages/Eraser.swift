import Crypto
import Foundation
import LeadFlowCore

/// `leadflow erase`: a person's leads out of the tables and out of every archive, and a
/// tombstone so no later run or backfill brings them back.
///
/// Each step can be redone: the tombstone goes in first (runs stop inserting the person at
/// once), each rewritten archive is durable and verified before the row that supersedes the
/// old one commits, the old file is removed after, and a rerun of the same erasure finishes
/// whatever an interrupted one left (superseded files still on disk included).
public struct Eraser {
    let repository: any ErasureRepository
    let archiver: any RawArchiver
    let sealer: any TokenSealer

    public init(repository: any ErasureRepository, archiver: any RawArchiver, sealer: any TokenSealer) {
        self.repository = repository
        self.archiver = archiver
        self.sealer = sealer
    }

    public struct Summary: Sendable, Equatable {
        public var leadsDeleted = 0
        public var rejectionsDeleted = 0
        public var archivesRewritten = 0
        public var rawLeadsRemoved = 0
    }

    /// - Parameter instance: erase from this instance only (its rows and its connections'
    ///   archives); nil: from every instance.
    public func erase(email: String?, leadID: String?, instance: String? = nil, now: Date) async throws -> Summary {
        var tombstones: [(kind: String, hash: String)] = []
        if let email { tombstones.append(("email", sealer.erasureHash(ErasureList.subject(email: email)))) }
        if let leadID { tombstones.append(("lead_id", sealer.erasureHash(ErasureList.subject(leadID: leadID)))) }
        try await repository.lockErasures()
        do {
            let summary = try await erase(tombstones, email: email, leadID: leadID, instance: instance, now: now)
            try? await repository.unlockErasures()
            return summary
        } catch {
            try? await repository.unlockErasures()
            throw error
        }
    }

    /// The erasure itself, under the erasure lock.
    private func erase(_ tombstones: [(kind: String, hash: String)], email: String?, leadID: String?, instance: String?,
                       now: Date) async throws -> Summary {
        try await repository.addTombstones(tombstones, instance: instance, at: now)
        // Runs that started before the tombstone finish (and publish) before the scan;
        // runs that start after it read it and leave the person out.
        try await repository.waitForRunsInFlight()
        let person = ErasureList(hashes: Set(tombstones.map(\.hash)), hash: { [sealer] in sealer.erasureHash($0) })

        for path in try await repository.supersededArchivePaths() { try await archiver.remove(path) }
        var ids = try await repository.leadIDs(email: email.map(ErasureList.normalized), leadID: leadID, instance: instance)
        var summary = Summary()
        for archive in try await repository.currentArchives(instance: instance) {
            let members = try await archiver.members(of: archive.path)
            var rewritten: [(name: String, data: Data)] = []
            var removed = 0
            for member in members where member.name != "manifest.json" {
                guard member.name.hasSuffix(".json"), let page = try? GraphLeadPage.parse(Array(member.data)) else {
                    rewritten.append(member)
                    continue
                }
                let matches = Set(page.leads.filter { ids.contains($0.id) || person.contains($0) }.map(\.id))
                    .union(page.malformed.compactMap(\.leadID).filter(ids.contains))
                ids.formUnion(matches)
                let cleaned = try RawPage.removing(matches, from: member.data)
                removed += cleaned.removed
                rewritten.append((member.name, cleaned.body))
            }
            guard removed > 0 else { continue }
            let manifestData = members.first { $0.name == "manifest.json" }?.data ?? Data("{}".utf8)
            let manifest = try Self.manifest(manifestData, members: rewritten, removed: removed, now: now)
            let newPath = Self.rewrittenPath(archive.path, now: now)
            // Other people's raw leads pass through here: a folder only this user can read.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("leadflow-erase-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            defer { try? FileManager.default.removeItem(at: folder) }
            var files: [(name: String, file: URL)] = []
            for (index, member) in rewritten.enumerated() {
                let file = folder.appendingPathComponent("\(index)")
                try member.data.write(to: file)
                files.append((member.name, file))
            }
            let published = try await archiver.archive(members: files, manifest: manifest, relativePath: newPath)
            try await repository.replaceArchive(archive.id, with: published, at: now)
            try await archiver.remove(archive.path)
            summary.archivesRewritten += 1
            summary.rawLeadsRemoved += removed
        }
        let deleted = try await repository.deleteLeads(ids, instance: instance, tombstones: tombstones.map(\.hash),
                                                 archivesRewritten: summary.archivesRewritten)
        summary.leadsDeleted = deleted.leads
        summary.rejectionsDeleted = deleted.rejections
        return summary
    }

    /// The old manifest with the members' new hashes, the new lead count, and what the
    /// erasure removed (a count, never who).
    static func manifest(_ old: Data, members: [(name: String, data: Data)], removed: Int, now: Date) throws -> Data {
        var object = (try JSONSerialization.jsonObject(with: old) as? [String: Any]) ?? [:]
        object["members"] = Dictionary(members.map { ($0.name, Hex.lowercase(SHA256.hash(data: $0.data))) }, uniquingKeysWith: { a, _ in a })
        var counts = object["counts"] as? [String: Any] ?? [:]
        counts["leads"] = ((counts["leads"] as? Int) ?? removed) - removed
        object["counts"] = counts
        var erasures = object["erasures"] as? [[String: Any]] ?? []
        erasures.append(["at": UTCTime.iso8601(now), "leads_removed": removed])
        object["erasures"] = erasures
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }

    /// `…/run-7.tar.zst` → `…/run-7.erased-20261129T031500Z.tar.zst` (a second erasure
    /// replaces the stamp rather than adding one).
    static func rewrittenPath(_ path: String, now: Date) -> String {
        let f = UTCTime.fields(now)
        let stamp = String(format: "%04d%02d%02dT%02d%02d%02dZ", f.year, f.month, f.day, f.hour, f.minute, f.second)
        let folder = (path as NSString).deletingLastPathComponent
        let name = ((path as NSString).lastPathComponent)
            .replacingOccurrences(of: #"\.erased-[0-9]{8}T[0-9]{6}Z"#, with: "", options: .regularExpression)
        let renamed = name.range(of: ".tar").map { name[..<$0.lowerBound] + ".erased-\(stamp)" + name[$0.lowerBound...] }
            ?? name + ".erased-\(stamp)"
        return folder.isEmpty ? String(renamed) : folder + "/" + renamed
    }
}

import Crypto
import Foundation
import LeadFlowCore
import Logging

/// `leadflow erase`: a person's leads out of the tables, out of every archive and out of
/// every file under LEADFLOW_HOME, and a tombstone so no later run or backfill brings them back.
///
/// Each step can be redone: the tombstone goes in first (runs stop inserting the person at
/// once), what killed runs and erasures left is swept (`RunSweeper`: spool folders, archives
/// no row points at, `.partial-*` files, superseded files), each rewritten archive is
/// durable and verified before the row that supersedes the old one commits, the old file is
/// removed after, and a rerun of the same erasure finishes whatever an interrupted one left.
///
/// An archive this host cannot read (on another host's disk, or unreadable) does not stop
/// the erasure: the rows are deleted, and the archive is recorded as pending with keyed
/// hashes of what to take out; the next erasure or `archive verify --repair` that can read
/// it finishes the job.
public struct Eraser {
    let repository: any ErasureRepository
    let archiver: any RawArchiver
    let hasher: any ErasureHasher
    let sweeper: RunSweeper
    let host: String

    public init(repository: any ErasureRepository, archiver: any RawArchiver, hasher: any ErasureHasher, leads: any LeadRepository,
                spoolRoot: URL, host: String = ProcessInfo.processInfo.hostName, logger: Logger = Logger(label: "leadflow.erase")) {
        self.repository = repository
        self.archiver = archiver
        self.hasher = hasher
        self.host = host
        sweeper = RunSweeper(leads: leads, archiver: archiver, spoolRoot: spoolRoot, host: host, logger: logger)
    }

    public struct Summary: Sendable, Equatable {
        public var leadsDeleted = 0
        public var rejectionsDeleted = 0
        public var archivesRewritten = 0
        public var rawLeadsRemoved = 0
        /// Spool folders and archive files of killed runs and erasures, removed.
        public var leftoversRemoved = 0
        /// Archives still waiting for an erasure (this one's or an earlier one's) because
        /// this host cannot read them.
        public var pending: [PendingArchiveErasure] = []
    }

    /// - Parameter instance: erase from this instance only (its rows and its connections'
    ///   archives); nil: from every instance.
    public func erase(email: String?, leadID: String?, instance: String? = nil, now: Date) async throws -> Summary {
        var tombstones: [(kind: String, hash: String)] = []
        if let email { tombstones.append(("email", hasher.hash(ErasureList.subject(email: email)))) }
        if let leadID { tombstones.append(("lead_id", hasher.hash(ErasureList.subject(leadID: leadID)))) }
        return try await underLock {
            try await erase(tombstones, email: email, leadID: leadID, instance: instance, now: now)
        }
    }

    /// `archive verify --repair`: what killed runs and erasures left is swept, and the
    /// erasures pending on archives this host can read are finished.
    public func repair(now: Date) async throws -> Summary {
        try await underLock {
            var summary = Summary()
            summary.leftoversRemoved = try await sweeper.sweepAll(now: now, person: nil).filesRemoved
            let pending = try await repository.pendingErasures()
            let outcome = try await rewrite(pending.map { ($0.archiveID, $0.path) }, person: nil, ids: [], pending: pending, now: now)
            summary.archivesRewritten = outcome.rewritten
            summary.rawLeadsRemoved = outcome.removed
            summary.pending = try await repository.pendingErasures()
            return summary
        }
    }

    private func underLock(_ body: () async throws -> Summary) async throws -> Summary {
        try await repository.lockErasures()
        do {
            let summary = try await body()
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
        try await repository.addTombstones(tombstones, keyID: hasher.keyID, instance: instance, at: now)
        // Runs that started before the tombstone finish (and publish) before the scan;
        // runs that start after it read it and leave the person out.
        try await repository.waitForRunsInFlight()
        let person = ErasureList(hashes: Set(tombstones.map(\.hash)), hasher: hasher)
        let loaded = try await repository.leadIDs(email: email.map(ErasureList.normalized), leadID: leadID, instance: instance)

        var summary = Summary()
        summary.leftoversRemoved = try await sweeper.sweepAll(now: now, person: { loaded.contains($0.id) || person.contains($0) }).filesRemoved
        let pending = try await repository.pendingErasures()
        let current = try await repository.currentArchives(instance: instance)
        // Earlier erasures' pending archives are tried again too (outside this instance's too).
        let targets = current + pending.filter { waiting in !current.contains { $0.id == waiting.archiveID } }.map { ($0.archiveID, $0.path) }
        let outcome = try await rewrite(targets, person: (person, Set(current.map(\.id))), ids: loaded, pending: pending, now: now)
        summary.archivesRewritten = outcome.rewritten
        summary.rawLeadsRemoved = outcome.removed
        // What to take out of the archives this host cannot read: the person's keyed hashes,
        // and those of every lead id found for them (a lead found by its row, whose raw
        // e-mail the tombstone would not match).
        let pendingHashes = Set(tombstones.map(\.hash)).union(outcome.ids.map { hasher.hash(ErasureList.subject(leadID: $0)) })
        let deleted = try await repository.deleteLeads(outcome.ids, instance: instance, tombstones: tombstones.map(\.hash),
                                                       archivesRewritten: summary.archivesRewritten,
                                                       pending: outcome.unreachable.filter { archive in current.contains { $0.id == archive.archiveID } },
                                                       pendingHashes: pendingHashes, keyID: hasher.keyID, at: now)
        summary.leadsDeleted = deleted.leads
        summary.rejectionsDeleted = deleted.rejections
        summary.pending = try await repository.pendingErasures()
        return summary
    }

    /// Rewrites each archive without the leads to take out: the person's in the archives
    /// `person.scope` names, and those of the erasures pending on it. An archive this host
    /// cannot read is left, with the reason.
    private func rewrite(_ targets: [(id: Int64, path: String)], person: (list: ErasureList, scope: Set<Int64>)?, ids: Set<String>,
                         pending: [PendingArchiveErasure],
                         now: Date) async throws -> (rewritten: Int, removed: Int, ids: Set<String>, unreachable: [(archiveID: Int64, reason: String)]) {
        var ids = ids
        var rewritten = 0, removedTotal = 0
        var unreachable: [(archiveID: Int64, reason: String)] = []
        for archive in targets {
            let waiting = try pending.first { $0.archiveID == archive.id }.map { try ErasureList(tombstones: $0.hashes, hasher: hasher) }
            let personHere = person.flatMap { $0.scope.contains(archive.id) ? $0.list : nil }
            let members: [(name: String, data: Data)]
            do {
                members = try await archiver.members(of: archive.path)
            } catch is ArchiveFileMissing {
                unreachable.append((archive.id, "not on host \(host)"))
                continue
            } catch {
                unreachable.append((archive.id, "unreadable on host \(host): \((error as? any LeadFlowError)?.code ?? "read error")"))
                continue
            }
            var kept: [(name: String, data: Data)] = []
            var removed = 0
            for member in members where member.name != "manifest.json" {
                guard member.name.hasSuffix(".json"), let page = try? GraphLeadPage.parse(Array(member.data)) else {
                    kept.append(member)
                    continue
                }
                var mine: Set<String> = []
                if let personHere {
                    mine = Set(page.leads.filter { ids.contains($0.id) || personHere.contains($0) }.map(\.id))
                        .union(page.malformed.compactMap(\.leadID).filter(ids.contains))
                }
                ids.formUnion(mine)
                let theirs = waiting.map { list in Set(page.leads.filter(list.contains).map(\.id)) } ?? []
                let cleaned = try RawPage.removing(mine.union(theirs), from: member.data)
                removed += cleaned.removed
                kept.append((member.name, cleaned.body))
            }
            guard removed > 0 else {
                // Nothing of theirs in it (any more): the erasures waiting on it are done.
                if waiting != nil { try await repository.clearPendingErasures(archiveID: archive.id) }
                continue
            }
            let manifestData = members.first { $0.name == "manifest.json" }?.data ?? Data("{}".utf8)
            let manifest = try Self.manifest(manifestData, members: kept, removed: removed, now: now)
            var newPath = Self.rewrittenPath(archive.path, now: now)
            // Erased twice at one instant (an injected clock): the rewrite needs a name of its own.
            if newPath == archive.path { newPath = Self.rewrittenPath(archive.path, now: now.addingTimeInterval(1)) }
            // Other people's raw leads pass through here: a folder only this user can read.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("leadflow-erase-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            defer { try? FileManager.default.removeItem(at: folder) }
            var files: [(name: String, file: URL)] = []
            for (index, member) in kept.enumerated() {
                let file = folder.appendingPathComponent("\(index)")
                try member.data.write(to: file)
                files.append((member.name, file))
            }
            let published = try await archiver.archive(members: files, manifest: manifest, relativePath: newPath)
            try await repository.replaceArchive(archive.id, with: published, at: now)
            try await archiver.remove(archive.path)
            rewritten += 1
            removedTotal += removed
        }
        return (rewritten, removedTotal, ids, unreachable)
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

import Foundation
import LeadFlowCore
import Logging

/// What killed runs and erasures leave behind, found and removed. A run marked running is
/// dead when its process is gone (this host) or its lease ended (any host: a pod that never
/// comes back on a shared volume); it is marked abandoned. Then:
///
/// - spool folders of runs not running any more;
/// - archive files no row points at: an archive published whose row never committed (killed
///   between the two), a killed erasure's rewrite, and `.partial-*` files of a killed write,
///   whose run (or erasure) is over;
/// - files of archives an erasure superseded (an erasure killed before removing them).
///
/// Nothing committed depends on any of them: the next window re-reads whatever an abandoned
/// run had not committed, so nothing is kept "just in case" (they hold personal data).
struct RunSweeper {
    let leads: any LeadRepository
    let archiver: any RawArchiver
    let spoolRoot: URL
    let host: String
    let logger: Logger

    /// What one sweep removed (paths relative to LEADFLOW_HOME or to the spool).
    struct Swept: Sendable, Equatable {
        var abandonedRuns: [Int64] = []
        var spoolFolders: [String] = []
        var orphanArchives: [String] = []
        var partials: [String] = []
        var supersededFiles: [String] = []

        var filesRemoved: Int { spoolFolders.count + orphanArchives.count + partials.count + supersededFiles.count }
    }

    /// At the start of a run or backfill. The archive folder is read only when a run ended
    /// failed or abandoned since the last sweep (a healthy schedule never pays for it), and
    /// only while no erasure runs: an erasure's rewrite has no row until it commits.
    func sweep(now: Date) async throws -> Swept {
        var swept = try await sweepRunsAndSpool(now: now, person: nil)
        // Asked after the runs this sweep abandoned: they are among them.
        let ended = try await leads.runsToSweep()
        if !ended.isEmpty, try await leads.tryLockErasures() {
            do {
                try await sweepArchives(person: nil, into: &swept)
                try await leads.markSwept(ended, at: now)
                try? await leads.unlockErasures()
            } catch {
                try? await leads.unlockErasures()
                throw error
            }
        }
        report(swept)
        return swept
    }

    /// Everything, the whole archive folder included: for an erasure and for `archive verify
    /// --repair`, whose caller holds the erasure lock. With `person`, what live runs hold of
    /// them goes too: a spool folder whose pages hold the person (that connection's pass then
    /// fails, and the next run redoes it), an archive no row points at that holds them.
    func sweepAll(now: Date, person: (@Sendable (GraphLead) -> Bool)?) async throws -> Swept {
        var swept = try await sweepRunsAndSpool(now: now, person: person)
        try await sweepArchives(person: person, into: &swept)
        try await leads.markSwept(try await leads.runsToSweep(), at: now)
        report(swept)
        return swept
    }

    /// Marks dead runs abandoned and removes the spool folders of runs not running.
    private func sweepRunsAndSpool(now: Date, person: (@Sendable (GraphLead) -> Bool)?) async throws -> Swept {
        var swept = Swept()
        for run in try await leads.runningRuns() where isDead(run) {
            try await leads.abandonRun(run.id, at: now)
            swept.abandonedRuns.append(run.id)
            logger.notice("marked an interrupted run abandoned", metadata: ["run.id": "\(run.id)", "run.host": "\(run.host)"])
        }
        // Spool folders of runs that are not running any more, on any host (LEADFLOW_HOME may
        // be a volume that workers on several hosts share). Listed before the runs are asked
        // again: a worker starting meanwhile writes its run row before its folder, so a
        // folder seen here whose run is running is always in the answer.
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: spoolRoot.path)) ?? []
        let alive = Set(try await leads.runningRuns().map(\.id))
        for name in folders.sorted() {
            guard name.hasPrefix("run-"), let id = Int64(name.dropFirst(4)) else { continue }
            let folder = spoolRoot.appendingPathComponent(name)
            if !alive.contains(id) {
                if (try? FileManager.default.removeItem(at: folder)) != nil { swept.spoolFolders.append(name) }
            } else if let person {
                swept.spoolFolders += removeConnectionFolders(in: folder, holding: person).map { "\(name)/\($0)" }
            }
        }
        return swept
    }

    /// Archive files no row points at, of writers that are over, and files of superseded
    /// archives. Called with the erasure lock held: no erasure's rewrite is in flight.
    private func sweepArchives(person: (@Sendable (GraphLead) -> Bool)?, into swept: inout Swept) async throws {
        // Listed first, then the runs, then the rows: a file listed here whose run was alive
        // when asked is left alone; one whose run was over then can get no row any more, so
        // a row that is missing when asked after never comes.
        let files = try await archiver.storedFiles()
        let alive = Set(try await leads.runningRuns().map(\.id))
        let recorded = try await leads.archivePaths()
        for path in files {
            guard let name = ArchiveFileName((path as NSString).lastPathComponent) else { continue }
            if let superseded = recorded[path] {
                if superseded {
                    try await archiver.remove(path)
                    swept.supersededFiles.append(path)
                }
                continue
            }
            // The erasure lock is ours: an erasure's file without a row is a killed erasure's.
            let writerOver = name.erasure || !alive.contains(name.runID)
            if name.partial {
                guard writerOver else { continue }
                try await archiver.remove(path)
                swept.partials.append(path)
            } else if writerOver {
                try await archiver.remove(path)
                swept.orphanArchives.append(path)
            } else if let person, try await holds(path, person) {
                // A live run's archive without a row that holds an erased person: its pass
                // began before the tombstone and failed after publishing (the erasure waited
                // for every pass in flight), so no row will ever point at it.
                try await archiver.remove(path)
                swept.orphanArchives.append(path)
            }
        }
    }

    /// A run of this host whose process is gone, or a run of any host whose lease ended.
    func isDead(_ run: RunningRun) -> Bool {
        if run.host == host, let pid = run.processID, !processExists(pid) { return true }
        return run.leaseLapsed
    }

    private func holds(_ path: String, _ person: @Sendable (GraphLead) -> Bool) async throws -> Bool {
        guard let members = try? await archiver.members(of: path) else { return false }
        return members.contains { member in
            member.name.hasSuffix(".json") && (try? GraphLeadPage.parse(Array(member.data)))?.leads.contains(where: person) == true
        }
    }

    /// The `connection-*` folders of a live run's spool whose raw pages hold the person.
    private func removeConnectionFolders(in runFolder: URL, holding person: (GraphLead) -> Bool) -> [String] {
        var removed: [String] = []
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: runFolder.path)) ?? []).sorted() {
            let folder = runFolder.appendingPathComponent(name)
            let pages = FileManager.default.enumerator(atPath: folder.appendingPathComponent("pages").path)?
                .compactMap { $0 as? String }.filter { $0.hasSuffix(".json") } ?? []
            let holds = pages.contains { page in
                guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent("pages/\(page)").path),
                      let parsed = try? GraphLeadPage.parse(Array(data)) else { return false }
                return parsed.leads.contains(where: person)
            }
            if holds, (try? FileManager.default.removeItem(at: folder)) != nil { removed.append(name) }
        }
        return removed
    }

    private func report(_ swept: Swept) {
        guard swept.filesRemoved > 0 else { return }
        logger.notice("removed what killed runs and erasures left", metadata: [
            "sweep.spool_folders": "\(swept.spoolFolders.count)", "sweep.orphan_archives": "\(swept.orphanArchives.count)",
            "sweep.partial_files": "\(swept.partials.count)", "sweep.superseded_files": "\(swept.supersededFiles.count)",
        ])
    }
}

/// A process of this host that exists (kill 0 succeeds, or is refused for lack of
/// permission): a run or a claim whose process is gone was left by a crash.
func processExists(_ processID: Int32) -> Bool {
    kill(processID, 0) == 0 || errno != ESRCH
}

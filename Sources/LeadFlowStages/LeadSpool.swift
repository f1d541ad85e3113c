import Crypto
import Foundation
import LeadFlowCore
import LeadFlowGraph

/// Where one connection's extracted pages go as they arrive, in the run's spool folder:
/// each lead is parsed once (by the Graph client), transformed and hashed here, once, and
/// spooled twice — the raw page as Graph sent it (secrets redacted) for the archive, and
/// the ready rows in the load's own format for the load. A lead that cannot be read or
/// made valid becomes a rejection with its reason; the rest of its page goes on.
///
/// `pages/form-<id>/page-0001.json` are the archive's members; `rows/form-<id>.copy` the load's.
final class LeadSpool: LeadPageSink, @unchecked Sendable {
    /// A raw page on disk, as the archive takes it.
    struct RawPageFile: Sendable {
        let formID: String
        let number: Int
        /// The archive member name.
        let name: String
        let file: URL
        let sha256: String
        let leads: Int
    }

    /// What a form's window left in the spool.
    struct FormRows: Sendable {
        var file: URL
        var rows = 0
        var rejections: [SpooledRejection] = []
        /// The newest `created_time` Graph gave before the run's instant: the watermark.
        var newest: Date?
        var erased = 0
        /// Ids of the erased people's leads left out (recorded as withheld).
        var withheld: [String] = []
    }

    let folder: URL
    let transformer: LeadTransformer
    let contexts: [String: LeadContext]
    /// Erased people never reach the spool, so never an archive or a table.
    let erased: ErasureList
    /// Leads stamped at or after this instant do not move a watermark.
    let now: Date
    private let lock = NSLock()
    // Guarded by `lock`.
    private var pages: [RawPageFile] = []
    private var forms: [String: FormRows] = [:]
    private var handles: [String: FileHandle] = [:]
    private var fingerprints = Fingerprints()

    /// Each spooled lead's form, id and raw hash, so a pass can ask whether it read anything
    /// the tables do not already hold byte for byte. Bounded: past `limit` leads a pass is
    /// taken to hold something new (an overlap's re-reads are a handful of leads).
    struct Fingerprints: Sendable {
        static let limit = 10_000
        private(set) var formIDs: [String] = []
        private(set) var leadIDs: [String] = []
        private(set) var hashes: [String] = []
        private(set) var overflowed = false

        mutating func add(form: String, lead: String, hash: String) {
            guard !overflowed else { return }
            guard leadIDs.count < Self.limit else {
                overflowed = true
                (formIDs, leadIDs, hashes) = ([], [], [])
                return
            }
            formIDs.append(form)
            leadIDs.append(lead)
            hashes.append(hash)
        }

        /// The leads of these forms: ids and hashes, in step.
        func of(_ forms: Set<String>) -> (leadIDs: [String], hashes: [String]) {
            let kept = formIDs.indices.filter { forms.contains(formIDs[$0]) }
            return (kept.map { leadIDs[$0] }, kept.map { hashes[$0] })
        }
    }

    init(folder: URL, transformer: LeadTransformer, contexts: [String: LeadContext], erased: ErasureList, now: Date) throws {
        self.folder = folder
        self.transformer = transformer
        self.contexts = contexts
        self.erased = erased
        self.now = now
        // Raw pages and rows are personal data: only LeadFlow's user may read them.
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("rows"), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    deinit {
        for handle in handles.values { try? handle.close() }
    }

    func receive(_ page: LeadPage) async throws {
        PassLiveness.tick()
        guard let context = contexts[page.formID] else { return }
        // Erased people out of the raw page before it touches the disk.
        let gone = Set(page.leads.filter(erased.contains).map(\.id))
        var body = page.rawBody
        if !gone.isEmpty { body = try RawPage.removing(gone, from: body).body }
        let name = "pages/form-\(page.formID)/page-\(String(format: "%04d", page.number)).json"
        let file = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        guard FileManager.default.createFile(atPath: file.path, contents: body, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
        }
        let raw = RawPageFile(formID: page.formID, number: page.number, name: name, file: file,
                              sha256: Hex.lowercase(SHA256.hash(data: body)), leads: page.leads.count + page.malformed.count - gone.count)

        // The one pass: transform, hash, encode the row.
        // Rows go to the form's file every few megabytes: a page of large answers is not
        // held twice (leads and rows) in memory. One stream reads a form, so one page of it
        // is spooled at a time and its rows stay contiguous.
        var rows: [UInt8] = []
        rows.reserveCapacity(min(page.leads.count * 640, Self.rowsFlushBytes + (1 << 20)))
        func flushRows() throws {
            guard !rows.isEmpty else { return }
            try lock.withLock {
                if forms[page.formID] == nil { forms[page.formID] = try formRows(page.formID) }
                try handles[page.formID]!.write(contentsOf: rows)
            }
            rows.removeAll(keepingCapacity: true)
        }
        var written = 0
        var rejections: [SpooledRejection] = []
        var newest: Date?
        func saw(_ created: Date?) {
            if let created, created < now { newest = max(newest ?? created, created) }
        }
        var canonical: [UInt8] = []
        var seen: [(String, String)] = []
        for lead in page.leads where !gone.contains(lead.id) {
            canonical.removeAll(keepingCapacity: true)
            lead.appendCanonicalJSON(to: &canonical)
            let digest = Hex.lowercase(SHA256.hash(data: canonical))
            saw(lead.createdAt)
            switch transformer.transform(lead, context: context) {
            case .lead(let ready):
                LeadRow.append(ready, rawSHA256: digest, to: &rows)
                written += 1
                if rows.count >= Self.rowsFlushBytes { try flushRows() }
                seen.append((lead.id, digest))
            case .rejected(let rejection):
                rejections.append(SpooledRejection(rejection, rawSHA256: digest))
            }
        }
        for element in page.malformed {
            let created = element.createdTime.flatMap(UTCTime.parse)
            saw(created)
            let id = element.leadID.flatMap { $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) ? $0 : nil }
            rejections.append(SpooledRejection(LeadRejection(leadID: id, formID: page.formID, createdAt: created, reasons: [element.reason]),
                                               rawSHA256: Hex.lowercase(SHA256.hash(data: element.raw))))
        }

        try lock.withLock {
            pages.append(raw)
            var state = try formRows(page.formID)
            state.rows += written
            state.rejections += rejections
            state.erased += gone.count
            state.withheld += gone
            if let newest { state.newest = max(state.newest ?? newest, newest) }
            forms[page.formID] = state
            for (id, digest) in seen { fingerprints.add(form: page.formID, lead: id, hash: digest) }
        }
        try flushRows()
        // A page is on disk and more are being read: a kill here is a kill in extraction.
        DebugKill.point(DebugKill.extract)
    }

    static let rowsFlushBytes = 4 << 20

    /// The form's accumulator, its rows file opened on first use. Called with `lock` held.
    private func formRows(_ formID: String) throws -> FormRows {
        if let state = forms[formID] { return state }
        let file = folder.appendingPathComponent("rows/form-\(formID).copy")
        guard FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file.path])
        }
        handles[formID] = try FileHandle(forWritingTo: file)
        return FormRows(file: file)
    }

    /// The form's rows, its file flushed and closed (nil: no page of it arrived).
    func rows(of formID: String) throws -> FormRows? {
        try lock.withLock {
            if let handle = handles.removeValue(forKey: formID) { try handle.close() }
            return forms[formID]
        }
    }

    /// The spooled leads' ids and raw hashes (see `Fingerprints`).
    var leadFingerprints: Fingerprints { lock.withLock { fingerprints } }

    /// The rejections spooled for these forms.
    func rejections(of formIDs: Set<String>) -> [SpooledRejection] {
        lock.withLock { forms.filter { formIDs.contains($0.key) }.values.flatMap(\.rejections) }
    }

    /// Leads of erased people left out of the spooled pages.
    var erasedCount: Int { lock.withLock { forms.values.reduce(0) { $0 + $1.erased } } }

    /// The raw pages of these forms, in form and page order.
    func pages(of formIDs: Set<String>) -> [RawPageFile] {
        lock.withLock { pages.filter { formIDs.contains($0.formID) }.sorted { ($0.formID, $0.number) < ($1.formID, $1.number) } }
    }
}

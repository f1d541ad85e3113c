import Crypto
import Foundation
import LeadFlowCore
import LeadFlowGraph

/// Writes each raw page to the run's spool folder as it arrives (`<form>/page-0001.json`),
/// so the stages after extraction read files, not memory, and a killed run loses nothing
/// that was committed.
final class SpoolSink: LeadPageSink, @unchecked Sendable {
    struct Spooled: Sendable {
        let formID: String
        let number: Int
        /// The archive member name.
        let name: String
        let file: URL
        let sha256: String
        let leads: Int
    }

    let folder: URL
    /// Erased people never reach the spool, so never an archive or a table.
    let erased: ErasureList
    private let lock = NSLock()
    private var pages: [Spooled] = []
    private var erasedLeads = 0

    init(folder: URL, erased: ErasureList = .none) throws {
        self.folder = folder
        self.erased = erased
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func receive(_ page: LeadPage) async throws {
        let name = "pages/form-\(page.formID)/page-\(String(format: "%04d", page.number)).json"
        let file = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        var body = page.rawBody
        var removed = 0
        let matches = Set(page.leads.filter(erased.contains).map(\.id))
        if !matches.isEmpty { (body, removed) = try RawPage.removing(matches, from: body) }
        try body.write(to: file)
        let digest = Hex.lowercase(SHA256.hash(data: body))
        lock.withLock {
            erasedLeads += removed
            pages.append(Spooled(formID: page.formID, number: page.number, name: name, file: file, sha256: digest,
                                 leads: page.leads.count - removed))
        }
    }

    /// Leads of erased people left out of the spooled pages.
    var erasedCount: Int { lock.withLock { erasedLeads } }

    /// The spooled pages of these forms, in form and page order.
    func pages(of forms: Set<String>) -> [Spooled] {
        lock.withLock { pages.filter { forms.contains($0.formID) }.sorted { ($0.formID, $0.number) < ($1.formID, $1.number) } }
    }
}

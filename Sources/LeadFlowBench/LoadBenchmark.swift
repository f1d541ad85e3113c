// The load stage alone: the rows a run spools (the fake's generated leads, transformed and
// hashed as the extract stage does, outside the clock) loaded with LeadStore.loadWindow,
// one transaction per form, into an empty `leads` table. Needs DATABASE_URL (a fresh database).
// Prints: `load rows N seconds S rows_per_s R`.
import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport

func runLoadBenchmark(totalLeads: Int) async throws {
    guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"] else {
        FileHandle.standardError.write(Data("DATABASE_URL is not set\n".utf8))
        exit(64)
    }
    let db = try PostgresConnection(conninfo: url)
    try Migrator().migrate(db)
    try db.execute(raw: RawSQL(label: "the benchmark's connection, run and archive", """
        INSERT INTO connections (instance, page_id, label, authenticator_user_id, token_ciphertext, token_key_id,
                                 token_type, authenticated_at, created_at, updated_at)
        VALUES ('bench', '1001', 'bench-load', '42', decode(repeat('ab', 40), 'hex'), 'k1', 'PAGE', now(), now(), now());
        INSERT INTO runs (kind, pipeline, host, started_at, upper_bound) VALUES ('scheduled', 'bench', 'bench', now(), now());
        INSERT INTO archives (run_id, connection_id, path, sha256, bytes, members, window_to, created_at, verified_at)
            VALUES (1, 1, 'archives/bench.tar.zst', repeat('a', 64), 1, 1, now(), now(), now());
        """))
    let scenario = benchScenario(totalLeads: totalLeads, tokenPrefix: "bench-", pages: 10)
    var pipeline = Pipeline(name: "bench")
    pipeline.defaultSource = "bench"
    let transformer = LeadTransformer(pipeline: pipeline)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("leadflow-bench-load-\(getpid())")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }

    // The extract stage's output, written before the clock starts.
    var batches: [WindowBatch] = []
    for page in scenario.pages {
        for form in page.forms {
            let context = LeadContext(instance: "bench", connectionID: 1, pageID: page.id, formID: form.id, formName: form.name)
            var rows: [UInt8] = []
            var count = 0
            for lead in form.generate?.leads(formID: form.id) ?? [] {
                guard case .lead(let ready) = transformer.transform(lead, context: context) else { continue }
                LeadRow.append(ready, rawSHA256: String(repeating: "0", count: 64), to: &rows)
                count += 1
            }
            let file = folder.appendingPathComponent("form-\(form.id).copy")
            try Data(rows).write(to: file)
            batches.append(WindowBatch(runID: 1, connectionID: 1, instance: "bench", formID: form.id,
                                       window: LeadWindow(from: nil, to: Date()), archiveID: 1, commit: .leadsOnly, claim: nil,
                                       at: Date(), rows: file, rowCount: count, rejections: []))
        }
    }
    let store = LeadStore(try PostgresSession(conninfo: url))
    var loaded = 0
    let start = ContinuousClock.now
    for batch in batches { loaded += try await store.loadWindow(batch).inserted }
    let elapsed = (ContinuousClock.now - start).timeInterval
    print(String(format: "load rows %d seconds %.3f rows_per_s %.0f", loaded, elapsed, Double(loaded) / elapsed))
}

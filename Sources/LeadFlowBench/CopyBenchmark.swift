// COPY throughput of the Postgres adapter against psql's \copy of the same rows, in one run.
// Prints rows/s for each and their ratio. Both load into the same empty table on the same
// server; each round truncates first; the best round of each counts.
import Foundation
import LeadFlowPostgres

struct BenchLead {
    let id: Int64
    let formID: String
    let createdAt: Date
    let email: String
    let fullName: String
    let answers: String
}

private let base = Date(timeIntervalSince1970: 1_793_536_496)

private func makeLead(_ index: Int) -> BenchLead {
    let id: Int64 = 100_000_000_000_000 + Int64(index)
    let form = String(200_000 + index % 50)
    let created = base.addingTimeInterval(Double(index))
    return BenchLead(id: id, formID: form, createdAt: created,
                     email: "person\(index)@example.com", fullName: "Person \(index) O'Brien",
                     answers: #"{"What is your role?":["Marketing\tops"],"budget":["10k"]}"#)
}
private func write(_ lead: BenchLead, to writer: inout PostgresCopyWriter) throws {
    writer.append(String(lead.id))
    writer.append(lead.formID)
    writer.append(lead.createdAt)
    writer.append(lead.email)
    writer.append(lead.fullName)
    writer.append(lead.answers)
    try writer.endRow()
}

func runCopyBenchmark(rowCount: Int, rounds: Int) throws {
    guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"] else {
        FileHandle.standardError.write(Data("DATABASE_URL is not set\n".utf8))
        exit(64)
    }
    let leads = (0..<rowCount).map(makeLead)
    let db = try PostgresConnection(conninfo: url)
    try db.execute(raw: RawSQL(label: "bench table", """
        DROP TABLE IF EXISTS bench_leads;
        CREATE TABLE bench_leads (lead_id text, form_id text, created_at timestamptz, email text, full_name text, answers jsonb)
        """))

    // The same rows as a file, for psql.
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("leadflow-bench-\(getpid()).tsv")
    var encoder = PostgresCopyWriter()
    for lead in leads { try write(lead, to: &encoder) }
    try Data(encoder.pendingBytes).write(to: file)
    defer { try? FileManager.default.removeItem(at: file) }

    func truncate() throws {
        try db.execute(raw: RawSQL(label: "bench truncate", "TRUNCATE bench_leads; CHECKPOINT"))
    }

    func count() throws -> Int { try db.query("SELECT count(*) FROM bench_leads")[0].int(0) ?? 0 }

    var psqlBest = Double.infinity
    var adapterBest = Double.infinity
    for round in 1...rounds {
        try truncate()
        let psqlTime = try seconds {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c",
                                 "\\copy bench_leads (lead_id, form_id, created_at, email, full_name, answers) FROM '\(file.path)'"]
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw CocoaError(.fileReadUnknown) }
        }
        let psqlRows = try count()
        precondition(psqlRows == rowCount, "psql loaded the wrong number of rows")
        try truncate()
        let adapterTime = try seconds {
            try db.copyIn("COPY bench_leads (lead_id, form_id, created_at, email, full_name, answers) FROM STDIN",
                          label: "bench copy") { writer in
                for lead in leads { try write(lead, to: &writer) }
            }
        }
        let adapterRows = try count()
        precondition(adapterRows == rowCount, "the adapter loaded the wrong number of rows")
        psqlBest = min(psqlBest, psqlTime)
        adapterBest = min(adapterBest, adapterTime)
        print(String(format: "round %d: psql \\copy %.3f s, adapter COPY %.3f s", round, psqlTime, adapterTime))
    }

    let psqlRate = Double(rowCount) / psqlBest
    let adapterRate = Double(rowCount) / adapterBest
    print(String(format: "rows: %d (file %.1f MB), best of %d rounds", rowCount, Double(encoder.pendingBytes.count) / 1e6, rounds))
    print(String(format: "psql \\copy (baseline):  %10.0f rows/s", psqlRate))
    print(String(format: "adapter copyIn:         %10.0f rows/s", adapterRate))
    print(String(format: "ratio adapter/psql:     %10.2f", adapterRate / psqlRate))
}


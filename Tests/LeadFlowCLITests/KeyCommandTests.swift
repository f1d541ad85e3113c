import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// The two keys: the token key, rotated by `leadflow key rotate` (crash-safe, the old key
/// kept until nothing refers to it), and the erasure key, a key of its own whose id every
/// tombstone carries, never made again by accident. Through the built binary.
@Suite(.serialized) struct KeyCommandTests {
    static let day = TestDays(zero: "2026-03-02T09:00:00Z")

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let leadflow: LeadFlowCLI
    let db: PostgresConnection
    var keyFile: URL { home.appendingPathComponent("token.key") }
    var nextKeyFile: URL { home.appendingPathComponent("token.key.next") }
    var erasureKeyFile: URL { home.appendingPathComponent("erasure.key") }

    init() throws {
        var scenario = GraphScenario(
            pages: ["1001", "1002", "1003"].map { page in
                .init(id: page, name: "Page \(page)", forms: [
                    .init(id: "\(page)1", name: "Form", generate: .init(count: 40, start: "2026-03-02T09:30:00+0000", spacingSeconds: 10_800)),
                ])
            },
            tokens: [.init(token: "EAAB-keys-token", pages: ["1001", "1002", "1003"]),
                     .user("EAAB-keys-token-day6", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(6)))])
        scenario.tokens[0].type = "USER"
        fake = try GraphFake(scenario: scenario, now: Self.day(0))
        databaseURL = try TestDatabase.create("keys")
        home = try Repository.temporaryFolder("keys")
        leadflow = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, days: Self.day)
        db = try PostgresConnection(conninfo: databaseURL)
    }

    func connect(_ pages: [String], notify: Bool = false) async throws {
        for page in pages {
            let result = try await leadflow(["connect", "--instance", "acme", "--page", page, "--name", "acme-\(page)"]
                                            + (notify ? ["--notify-email", "priya@acme.example"] : []), day: 0, input: "EAAB-keys-token\n")
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    func keyIDs() throws -> [String] {
        try db.query("SELECT token_key_id || '/' || coalesce(notify_email_key_id, '-') FROM connections ORDER BY id").all.map { try $0.string(0)! }
    }

    func email(of lead: GraphLead) throws -> String {
        try #require(lead.fieldData.first { $0.name == "email" }?.values.first).trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// No file under LEADFLOW_HOME holds these bytes.
    func nowhere(_ key: Data) -> Bool {
        HomeFiles.all(under: home).allSatisfy { (try? Data(contentsOf: home.appendingPathComponent($0))) != key }
    }

    @Test func rotateThenRunWorksAndTheOldKeyIsGone() async throws {
        try await connect(["1001", "1002"], notify: true)
        #expect(try await leadflow(["run"], day: 5).status == 0)
        let oldKey = try Data(contentsOf: keyFile)
        let erasureKey = try Data(contentsOf: erasureKeyFile)
        let oldID = try #require(try keyIDs().first).split(separator: "/")[0]

        let rotate = try await leadflow(["key", "rotate"], day: 5.1)
        #expect(rotate.status == 0, "\(rotate.stderr)")
        let newKey = try Data(contentsOf: keyFile)
        let newID = try #require(try TokenVault.open(keyFile: keyFile).keyID)
        #expect(newKey != oldKey && newID != oldID)
        #expect(rotate.stderr.contains("rotated: 2 connections sealed again under key \(newID); key \(oldID) removed"), "\(rotate.stderr)")
        // Tokens and addresses under the new key; the old key in no file; the erasure key untouched.
        #expect(try keyIDs() == ["\(newID)/\(newID)", "\(newID)/\(newID)"])
        #expect(nowhere(oldKey))
        #expect(!FileManager.default.fileExists(atPath: nextKeyFile.path))
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int == 0o600)
        #expect(try Data(contentsOf: erasureKeyFile) == erasureKey)
        #expect(try db.query("SELECT key_id FROM retired_token_keys")[0].string(0) == String(oldID))

        // Every command opens the tokens (and the addresses) under the new key.
        let run = try await leadflow(["run"], day: 6)
        #expect(run.status == 0, "\(run.stderr)")
        let expected = (fake.leads(ofForm: "10011") + fake.leads(ofForm: "10021")).filter { $0.createdAt! < Self.day(6) }
        #expect(try db.query("SELECT count(*) FROM leads")[0].int(0) == expected.count)
        #expect(try await leadflow(["check"], day: 6).status == 0)
    }

    /// Killed while the second of three connections is being sealed again (held there by a
    /// row lock another session takes, then SIGKILL): the new key waits beside the old one,
    /// runs work with both, and a rerun finishes with the same new key.
    @Test func aRotationKilledHalfWayIsFinishedByARerun() async throws {
        try await connect(["1001", "1002", "1003"])
        let oldKey = try Data(contentsOf: keyFile)
        let oldID = try TokenVault.open(keyFile: keyFile).keyID
        let ids = try db.query("SELECT id FROM connections ORDER BY id").all.map { try $0.int(0)! }

        let holder = try PostgresConnection(conninfo: databaseURL)
        try holder.execute(raw: RawSQL(label: "hold", "BEGIN"))
        try holder.query("SELECT 1 FROM connections WHERE id = $1 FOR UPDATE", [ids[1]])
        fake.now = Self.day(1)
        let rotate = try SpawnedProcess(LeadFlowBinary.path, ["key", "rotate"], environment: leadflow.environment(at: Self.day(1)))
        let watcher = try PostgresConnection(conninfo: databaseURL)
        let held = try await watcher.waitForLockWait(like: "%UPDATE connections SET token_ciphertext%")
        try #require(held, "the rotation never reached the second connection: \(rotate.stderrSoFar)")
        kill(rotate.processIdentifier, SIGKILL)
        await rotate.exit()
        // Postgres notices a dead client only when it next talks to it: the waiting UPDATE
        // would still run (and commit) once the lock is released. End it as the crash would.
        try await watcher.endWaitingBackends(like: "%UPDATE connections SET token_ciphertext%")
        try holder.execute(raw: RawSQL(label: "release", "ROLLBACK"))

        // Half way: the first connection under the new key, the others under the old; both keys on disk.
        let newID = try #require(try TokenVault.open(keyFile: nextKeyFile).keyID)
        let newKey = try Data(contentsOf: nextKeyFile)
        #expect(try Data(contentsOf: keyFile) == oldKey)
        #expect(try keyIDs() == ["\(newID)/-", "\(oldID)/-", "\(oldID)/-"])
        let during = try await leadflow(["run"], day: 2)
        #expect(during.status == 0, "a run between the kill and the rerun opens both keys: \(during.stderr)")

        let rerun = try await leadflow(["key", "rotate"], day: 3)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("rotated: 2 connections sealed again under key \(newID); key \(oldID) removed"), "\(rerun.stderr)")
        #expect(try Data(contentsOf: keyFile) == newKey)
        #expect(!FileManager.default.fileExists(atPath: nextKeyFile.path))
        #expect(try keyIDs() == Array(repeating: "\(newID)/-", count: 3))
        #expect(nowhere(oldKey))
        let after = try await leadflow(["run"], day: 4)
        #expect(after.status == 0, "\(after.stderr)")
    }

    /// Tombstones carry the erasure key's id; after the token key is rotated a backfill of
    /// the whole window still leaves the erased person out.
    @Test func tombstonesCarryTheErasureKeyIDAndStillBlockAfterATokenKeyRotation() async throws {
        try await connect(["1001"])
        #expect(try await leadflow(["run"], day: 5).status == 0)
        let person = try #require(fake.leads(ofForm: "10011").sorted { $0.id < $1.id }.dropFirst(10).first)
        let erase = try await leadflow(["erase", "--email"], day: 5.5, input: try email(of: person) + "\n")
        #expect(erase.status == 0, "\(erase.stderr)")
        let erasureID = try #require(try ErasureKey.open(keyFile: erasureKeyFile)).keyID
        #expect(try db.query("SELECT key_id FROM erasures").all.map { try $0.string(0)! } == [erasureID])
        #expect(try db.query("SELECT key_id, origin FROM erasure_key").all.map { [try $0.string(0)!, try $0.string(1)!] } == [[erasureID, "generated"]])

        #expect(try await leadflow(["key", "rotate"], day: 6).status == 0)
        let backfill = try await leadflow(["backfill", "--connection", "acme-1001", "--since", UTCTime.iso8601(Self.day(0))], day: 7)
        #expect(backfill.status == 0, "\(backfill.stderr)")
        #expect(try db.query("SELECT count(*) FROM leads WHERE lead_id = $1", [person.id])[0].int(0) == 0)
        #expect(try db.query("SELECT (counters->>'erased')::int FROM runs WHERE kind = 'backfill'")[0].int(0) == 1)
        #expect(try await HomeFiles.holding([try email(of: person)], under: home) == [])
    }

    /// A database from before the erasure key had a file of its own: its tombstones were
    /// hashed under an HKDF of the token key, and migration 10 marked them `token:<id>`. The
    /// first command that needs the erasure key writes that derived key to erasure.key and
    /// relabels them; rotating the token key away then changes nothing for them.
    @Test func legacyTombstonesKeepMatchingAfterTheTokenKeyTheyCameFromIsRotatedAway() async throws {
        try await connect(["1001"])
        #expect(try await leadflow(["run"], day: 5).status == 0)
        // The state an older release left, as migration 10 finds it: no erasure key file,
        // a tombstone hashed under the token key's derivation, the person's rows deleted.
        let vault = try TokenVault.open(keyFile: keyFile)
        let legacy = try #require(vault.legacyErasureKey(derivedFrom: vault.keyID))
        let person = try #require(fake.leads(ofForm: "10011").sorted { $0.id < $1.id }.dropFirst(10).first)
        try FileManager.default.removeItem(at: erasureKeyFile)
        try db.query("DELETE FROM erasure_key")
        try db.query("DELETE FROM leads WHERE lead_id = $1", [person.id])
        try db.query("""
            INSERT INTO erasures (subject_kind, subject_hash, requested_at, key_id) VALUES ('email', $1, $2, 'token:' || $3)
            """, [legacy.hash(ErasureList.subject(email: try email(of: person))), Self.day(5.5), vault.keyID])

        // The first command that needs the erasure key writes the derived key to its own file.
        let first = try await leadflow(["run"], day: 5.6)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try ErasureKey.open(keyFile: erasureKeyFile)?.keyID == legacy.keyID)
        #expect(try FileManager.default.attributesOfItem(atPath: erasureKeyFile.path)[.posixPermissions] as? Int == 0o600)
        #expect(try db.query("SELECT key_id FROM erasures").all.map { try $0.string(0)! } == [legacy.keyID])
        #expect(try db.query("SELECT origin, derived_from_token_key FROM erasure_key").all.map { [try $0.string(0)!, try $0.string(1)!] }
                == [["legacy", vault.keyID]])
        // Another host of the deployment, which has the token key but no erasure key yet,
        // writes the same one (checked against the recorded id), never another.
        try FileManager.default.removeItem(at: erasureKeyFile)
        #expect(try await leadflow(["run"], day: 5.7).status == 0)
        #expect(try ErasureKey.open(keyFile: erasureKeyFile)?.keyID == legacy.keyID)

        let rotate = try await leadflow(["key", "rotate"], day: 6)
        #expect(rotate.status == 0, "\(rotate.stderr)")
        #expect(try TokenVault.open(keyFile: keyFile).keyID != vault.keyID)
        #expect(try ErasureKey.open(keyFile: erasureKeyFile)?.keyID == legacy.keyID)
        // The token key it came from is gone: the erasure key file is now the only copy.
        let saved = try Data(contentsOf: erasureKeyFile)
        try FileManager.default.removeItem(at: erasureKeyFile)
        let lost = try await leadflow(["run"], day: 6.5)
        #expect(lost.status == 64 && lost.stderr.contains("there is no erasure key at \(erasureKeyFile.path)"), "\(lost.stderr)")
        try saved.write(to: erasureKeyFile)
        chmod(erasureKeyFile.path, 0o600)

        let backfill = try await leadflow(["backfill", "--connection", "acme-1001", "--since", UTCTime.iso8601(Self.day(0))], day: 7)
        #expect(backfill.status == 0, "\(backfill.stderr)")
        #expect(try db.query("SELECT count(*) FROM leads WHERE lead_id = $1", [person.id])[0].int(0) == 0)
        #expect(try db.query("SELECT count(*) FROM leads")[0].int(0) == fake.leads(ofForm: "10011").filter { $0.createdAt! < Self.day(7) }.count - 1)
    }

    /// The erasure key lost (or replaced): every command that matches tombstones stops with
    /// the path and the key id it needs, and none makes a new key.
    @Test func aLostErasureKeyIsAClearErrorAndNeverANewKey() async throws {
        try await connect(["1001"])
        #expect(try await leadflow(["run"], day: 5).status == 0)
        let person = try #require(fake.leads(ofForm: "10011").first)
        #expect(try await leadflow(["erase", "--lead", person.id], day: 5.5).status == 0)
        let erasureID = try #require(try ErasureKey.open(keyFile: erasureKeyFile)).keyID
        let saved = try Data(contentsOf: erasureKeyFile)

        try FileManager.default.removeItem(at: erasureKeyFile)
        for command in [["run"], ["backfill", "--all"], ["erase", "--lead", "1"], ["archive", "verify", "--repair"], ["key", "rotate"]] {
            let result = try await leadflow(command, day: 6)
            #expect(result.status == 64, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("there is no erasure key at \(erasureKeyFile.path), but the database records erasure key \(erasureID) (1 tombstone hashed under it)"),
                    "\(command): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: erasureKeyFile.path), "\(command) made a key")
        }
        // A reauthentication needs no erasure key, and makes none.
        let reconnect = try await leadflow(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-1001"], day: 6, input: "EAAB-keys-token-day6\n")
        #expect(reconnect.status == 0, "\(reconnect.stderr)")
        #expect(!FileManager.default.fileExists(atPath: erasureKeyFile.path))

        // Another key in its place is refused as well.
        let other = ErasureKey.random()
        try other.write(to: erasureKeyFile)
        let replaced = try await leadflow(["run"], day: 6)
        #expect(replaced.status == 64, "\(replaced.stderr)")
        #expect(replaced.stderr.contains("the erasure key file \(erasureKeyFile.path) holds key \(other.keyID), but the database's 1 tombstone is hashed under erasure key \(erasureID)"),
                "\(replaced.stderr)")

        try FileManager.default.removeItem(at: erasureKeyFile)
        try saved.write(to: erasureKeyFile)
        chmod(erasureKeyFile.path, 0o600)
        let restored = try await leadflow(["run"], day: 6)
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try db.query("SELECT count(*) FROM leads WHERE lead_id = $1", [person.id])[0].int(0) == 0)
    }
}

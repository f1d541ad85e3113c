import Foundation
import LeadFlowCore
import LeadFlowPostgres

/// The rows behind the keys: which key sealed each connection's secrets (`leadflow key
/// rotate` re-seals them), the token keys retired, and the erasure key the tombstones are
/// hashed under (`erasure_key`, one row).
public struct KeyStore: SealedSecretRepository {
    /// Every query runs on the session's own thread, never on the cooperative pool.
    let session: PostgresSession

    public init(_ session: PostgresSession) {
        self.session = session
    }

    /// Advisory lock space for key rotations (0x4C46-0x4C48 are connections, erasures, rounds).
    static let rotationLockSpace: Int32 = 0x4C4B

    public func lockRotation() async throws {
        try await session.run { db in
            _ = try db.query("SELECT pg_advisory_lock($1, 0)", [Int(Self.rotationLockSpace)], label: "lock key rotation")
        }
    }

    public func unlockRotation() async throws {
        try await session.run { db in
            _ = try db.query("SELECT pg_advisory_unlock($1, 0)", [Int(Self.rotationLockSpace)], label: "unlock key rotation")
        }
    }

    public func sealed(notUnder keyID: String) async throws -> [SealedSecrets] {
        try await session.run { db in
            try db.query("""
                SELECT id, instance, page_id, token_ciphertext, token_key_id, notify_email_ciphertext, notify_email_key_id FROM connections
                WHERE token_key_id <> $1 OR notify_email_key_id <> $1 ORDER BY id
                """, [keyID], label: "secrets sealed under other keys").all.map { row in
                SealedSecrets(connectionID: Int64(try row.int(0)!), instance: try row.string(1)!, pageID: try row.string(2)!,
                              token: try row.bytes(3)!, tokenKeyID: try row.string(4)!, address: try row.bytes(5),
                              addressKeyID: try row.string(6))
            }
        }
    }

    public func replace(_ old: SealedSecrets, with new: SealedSecrets) async throws -> Bool {
        try await session.run { db in
            try db.query("""
                UPDATE connections SET token_ciphertext = $4, token_key_id = $5, notify_email_ciphertext = $6, notify_email_key_id = $7
                WHERE id = $1 AND token_ciphertext = $2 AND notify_email_ciphertext IS NOT DISTINCT FROM $3::bytea
                """, [old.connectionID, old.token, old.address, new.token, new.tokenKeyID, new.address, new.addressKeyID],
                label: "re-seal connection secrets").affectedRows == 1
        }
    }

    public func retire(_ keyIDs: Set<String>, at: Date) async throws -> Int {
        try await session.run { db in
            try db.transaction { db in
                // EXCLUSIVE waits for, and then holds off, every writer of connections (a
                // connect's FOR UPDATE included): none seals under a retiring key unseen.
                try db.execute(raw: RawSQL(label: "hold connection writers", "LOCK TABLE connections IN EXCLUSIVE MODE"))
                let left = try db.query("""
                    SELECT count(*) FROM connections WHERE token_key_id = ANY($1) OR notify_email_key_id = ANY($1)
                    """, [Array(keyIDs)], label: "secrets under retiring keys")[0].int(0) ?? 0
                guard left == 0 else { return left }
                for keyID in keyIDs {
                    try db.query("INSERT INTO retired_token_keys (key_id, retired_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                 [keyID, at], label: "retire token key")
                }
                return 0
            }
        }
    }

    /// The erasure key the database's tombstones are hashed under, once one is recorded.
    public struct ErasureKeyRecord: Sendable, Equatable {
        public let keyID: String
        /// `generated` (random, by the first connect) or `legacy` (the HKDF of a token key
        /// that erasures used before the key had a file of its own).
        public let origin: String
        public let derivedFromTokenKey: String?
    }

    public func erasureKeyRecord() async throws -> ErasureKeyRecord? {
        try await session.run { db in
            try db.query("SELECT key_id, origin, derived_from_token_key FROM erasure_key", label: "erasure key").all.first.map {
                ErasureKeyRecord(keyID: try $0.string(0)!, origin: try $0.string(1)!, derivedFromTokenKey: try $0.string(2))
            }
        }
    }

    /// Records the erasure key (the first recorded stays: the table holds one row) and, in
    /// the same transaction, gives tombstones marked `token:<id>` by migration 10 (hashed
    /// under the HKDF of that token key) its key id. Returns the record in force.
    public func recordErasureKey(_ keyID: String, derivedFromTokenKey tokenKeyID: String?, relabel markers: [String],
                                 at: Date) async throws -> ErasureKeyRecord {
        try await session.run { db in
            try db.transaction { db in
                try db.query("""
                    INSERT INTO erasure_key (key_id, origin, derived_from_token_key, created_at) VALUES ($1, $2, $3, $4)
                    ON CONFLICT DO NOTHING
                    """, [keyID, tokenKeyID == nil ? "generated" : "legacy", tokenKeyID, at], label: "record erasure key")
                let row = try db.query("SELECT key_id, origin, derived_from_token_key FROM erasure_key", label: "erasure key")[0]
                let record = ErasureKeyRecord(keyID: try row.string(0)!, origin: try row.string(1)!, derivedFromTokenKey: try row.string(2))
                if record.keyID == keyID, !markers.isEmpty {
                    try db.query("UPDATE erasures SET key_id = $1 WHERE key_id = ANY($2)", [keyID, markers], label: "relabel legacy tombstones")
                }
                return record
            }
        }
    }

    /// Tombstones by the key id they carry (legacy ones: `token:<token key id>`).
    public func tombstonesByKey() async throws -> [String: Int] {
        try await session.run { db in
            Dictionary(try db.query("SELECT key_id, count(*) FROM erasures GROUP BY key_id", label: "tombstones by key").all.map {
                (try $0.string(0)!, try $0.int(1) ?? 0)
            }, uniquingKeysWith: +)
        }
    }
}

/// Which key files a command may open, and the only places one is made: the token key and
/// the erasure key by the first `leadflow connect` into a database with no connection; the
/// erasure key of a database from before it had a file of its own written once from the
/// token key it was derived from. Anything else missing is an error naming the path (exit
/// 64): a key made by accident would seal tokens nothing else opens, or hash tombstones that
/// match nobody, so erased people would come back.
public struct KeyCustody {
    public let tokenKeyFile: URL
    public let erasureKeyFile: URL
    let keys: KeyStore
    let connections: ConnectionStore

    public init(session: PostgresSession, tokenKeyFile: URL, erasureKeyFile: URL) {
        self.tokenKeyFile = tokenKeyFile
        self.erasureKeyFile = erasureKeyFile
        keys = KeyStore(session)
        connections = ConnectionStore(session)
    }

    /// The token key (and a rotation's new one beside it).
    public func tokenVault(forFirstConnect: Bool = false) async throws -> TokenVault {
        if try KeyFile.read(tokenKeyFile, what: "token key") != nil { return try TokenVault.open(keyFile: tokenKeyFile) }
        let sealed = try await connections.sealedTokens()
        if sealed.count == 0 && forFirstConnect { return try TokenVault.openOrCreate(keyFile: tokenKeyFile) }
        throw MissingKey(kind: .token, path: tokenKeyFile.path, count: sealed.count, keyID: sealed.keyID)
    }

    /// `connect`'s keys: the token key, and on the first connect (no connection yet) the
    /// erasure key too, so both are made together, once, on the host that connects first.
    public func keysForConnect(now: Date) async throws -> TokenVault {
        if try await connections.sealedTokens().count == 0 { _ = try await erasureKey(forFirstConnect: true, now: now) }
        return try await tokenVault(forFirstConnect: true)
    }

    /// The erasure key, checked against the one the database records.
    public func erasureKey(forFirstConnect: Bool = false, now: Date) async throws -> ErasureKey {
        let file = try ErasureKey.open(keyFile: erasureKeyFile)
        let tombstones = try await keys.tombstonesByKey()
        if let record = try await keys.erasureKeyRecord() {
            guard let file else {
                // A legacy key is the derivation of a token key: a host that still holds that
                // token key (another host of an upgraded deployment) writes the very key the
                // database records, checked by its id. Never another one.
                if let tokenKeyID = record.derivedFromTokenKey,
                   let derived = try? TokenVault.open(keyFile: tokenKeyFile).legacyErasureKey(derivedFrom: tokenKeyID),
                   derived.keyID == record.keyID {
                    try derived.write(to: erasureKeyFile)
                    return derived
                }
                throw MissingKey(kind: .erasure, path: erasureKeyFile.path, count: tombstones[record.keyID] ?? 0, keyID: record.keyID)
            }
            guard file.keyID == record.keyID else { throw mismatch(file, expected: record.keyID, tombstones: tombstones[record.keyID] ?? 0) }
            return file
        }
        let markers = tombstones.keys.filter { $0.hasPrefix("token:") }.sorted()
        let connectionCount = try await connections.sealedTokens().count
        if !markers.isEmpty || connectionCount > 0 {
            return try await adoptLegacyKey(file: file, markers: markers, tombstones: tombstones, now: now)
        }
        // A database with neither connections nor tombstones.
        if let file {
            _ = try await keys.recordErasureKey(file.keyID, derivedFromTokenKey: nil, relabel: [], at: now)
            return file
        }
        guard forFirstConnect else { throw MissingKey(kind: .erasure, path: erasureKeyFile.path, count: 0, keyID: nil) }
        let key = ErasureKey.random()
        try key.write(to: erasureKeyFile)
        let record = try await keys.recordErasureKey(key.keyID, derivedFromTokenKey: nil, relabel: [], at: now)
        guard record.keyID == key.keyID else { throw mismatch(key, expected: record.keyID, tombstones: 0) }
        return key
    }

    /// A database from before the erasure key had a file of its own: its tombstones were
    /// hashed under an HKDF of the token key. That key is written to the erasure key file
    /// (deterministic: every host that upgrades writes the same one) and recorded, and the
    /// tombstones get its id; from then on it no longer depends on the token key, which can be
    /// rotated or lost without an erased person coming back.
    private func adoptLegacyKey(file: ErasureKey?, markers: [String], tombstones: [String: Int], now: Date) async throws -> ErasureKey {
        let vault = try await tokenVault()
        let named = markers.map { String($0.dropFirst("token:".count)) }.filter { $0 != "unknown" }
        guard named.count <= 1 else {
            throw VaultError(kind: .keyMismatch, message: "erasure tombstones were hashed under keys derived from several token keys (\(named.joined(separator: ", "))); only one can be kept")
        }
        // No tombstone names the key (none yet, or none had a connection to name it by): the
        // key file's own key, the one before a rotation's new key when one waits beside it.
        let tokenKeyID = named.first ?? vault.keyIDs.sorted().first { $0 != vault.keyID } ?? vault.keyID
        guard let derived = vault.legacyErasureKey(derivedFrom: tokenKeyID) else {
            throw VaultError(kind: .keyMismatch, message: "\(markers.reduce(0) { $0 + (tombstones[$1] ?? 0) }) erasure tombstones were hashed under a key derived from token key \(tokenKeyID), which the key file \(tokenKeyFile.path) does not hold: restore that key file once, so the erasure key can be written to \(erasureKeyFile.path)")
        }
        if let file, file.keyID != derived.keyID {
            throw mismatch(file, expected: derived.keyID, tombstones: markers.reduce(0) { $0 + (tombstones[$1] ?? 0) })
        }
        if file == nil { try derived.write(to: erasureKeyFile) }
        let record = try await keys.recordErasureKey(derived.keyID, derivedFromTokenKey: tokenKeyID, relabel: markers, at: now)
        guard record.keyID == derived.keyID else { throw mismatch(derived, expected: record.keyID, tombstones: 0) }
        return derived
    }

    private func mismatch(_ found: ErasureKey, expected: String, tombstones: Int) -> VaultError {
        VaultError(kind: .keyMismatch, message: "the erasure key file \(erasureKeyFile.path) holds key \(found.keyID), but the database's "
            + "\(tombstones) tombstone\(tombstones == 1 ? " is" : "s are") hashed under erasure key \(expected): restore that key file "
            + "(a different key would let erased people back)")
    }
}

/// A key file is missing where a command expects it (exit 64).
public struct MissingKey: LeadFlowError {
    public enum Kind: String, Sendable { case token, erasure }
    public let kind: Kind
    public let path: String
    /// Token key: the connections sealed under it; erasure key: the tombstones hashed under it.
    public let count: Int
    public let keyID: String?
    public var code: String { "secrets.key_missing" }
    public var disposition: Disposition { .fatal }
    public var description: String {
        switch kind {
        case .token:
            if count == 0 {
                return "\(code): there is no token key at \(path); only the first `leadflow connect` creates one. "
                    + "If other hosts already run LeadFlow, point LEADFLOW_HOME or LEADFLOW_KEY_FILE at their key instead"
            }
            return "\(code): there is no token key at \(path), but the database holds \(count) connection\(count == 1 ? "" : "s") "
                + "sealed with key \(keyID ?? "?"): restore that key file there, or point LEADFLOW_HOME or LEADFLOW_KEY_FILE at it "
                + "(a new key could not open their tokens)"
        case .erasure:
            guard let keyID else {
                return "\(code): there is no erasure key at \(path); only the first `leadflow connect` creates one. "
                    + "If other hosts already run LeadFlow, copy their erasure key there or point LEADFLOW_ERASURE_KEY_FILE at it"
            }
            return "\(code): there is no erasure key at \(path), but the database records erasure key \(keyID) "
                + "(\(count) tombstone\(count == 1 ? "" : "s") hashed under it): restore that key file there from a backup or another host, "
                + "or point LEADFLOW_ERASURE_KEY_FILE at it (a new key would let erased people back)"
        }
    }
}

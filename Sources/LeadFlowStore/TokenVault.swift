import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LeadFlowCore

/// Why a token could not be sealed or opened, or a key file not read or written.
public struct VaultError: LeadFlowError, Equatable {
    public enum Kind: String, Sendable { case keyFile = "key_file", keyMismatch = "key_mismatch", corrupt, keyRetired = "key_retired" }
    public let kind: Kind
    public let message: String
    public var code: String { "secrets.\(kind.rawValue)" }
    public var disposition: Disposition { .fatal }
    public var description: String { "\(code): \(message)" }
}

/// Seals access tokens with AES-GCM under a 256-bit key kept in a 0600 key file, so the
/// database only ever holds ciphertext. Each ciphertext is bound to its connection
/// (instance and Page) as associated data: a ciphertext copied to another row won't open.
///
/// While `leadflow key rotate` runs (or after it was killed), the new key waits beside the
/// key file as `<key file>.next`: the vault then opens with both and seals with the new one,
/// so every command works throughout a rotation and a rerun finishes it.
public struct TokenVault: TokenSealer {
    /// The sealing key's fingerprint (not the key), stored beside each ciphertext.
    public let keyID: String
    /// Every key this vault opens with, by fingerprint (SymmetricKey is not Sendable; the
    /// vault is shared across tasks).
    private let keys: [String: Data]

    /// The fingerprints of every key this vault opens with.
    public var keyIDs: Set<String> { Set(keys.keys) }

    init(sealingKey: Data, others: [Data] = []) {
        keyID = KeyFile.fingerprint(sealingKey)
        keys = Dictionary((others + [sealingKey]).map { (KeyFile.fingerprint($0), $0) }, uniquingKeysWith: { _, last in last })
    }

    /// Where a rotation's new key waits until it takes the key file's place.
    public static func nextKeyFile(for keyFile: URL) -> URL {
        keyFile.deletingLastPathComponent().appendingPathComponent(keyFile.lastPathComponent + ".next")
    }

    /// Reads the key file, or creates it (32 random bytes, mode 0600) when it is missing.
    /// Only the first `leadflow connect`, the demo and tests call this (`KeyCustody`).
    public static func openOrCreate(keyFile: URL) throws -> TokenVault {
        if try KeyFile.read(keyFile, what: "token key") == nil {
            _ = try KeyFile.create(keyFile, bytes: KeyFile.randomKey(), what: "token key")
        }
        return try open(keyFile: keyFile)
    }

    /// Reads an existing key file, and the rotation's new key beside it when there is one;
    /// never creates one (a token sealed under a key made by accident opens nowhere else).
    public static func open(keyFile: URL) throws -> TokenVault {
        guard let key = try KeyFile.read(keyFile, what: "token key") else {
            throw VaultError(kind: .keyFile, message: "there is no key file at \(keyFile.path): point LEADFLOW_HOME or LEADFLOW_KEY_FILE at the one the runs use")
        }
        guard let next = try KeyFile.read(nextKeyFile(for: keyFile), what: "new token key") else { return TokenVault(sealingKey: key) }
        return TokenVault(sealingKey: next, others: [key])
    }

    /// nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes).
    public func seal(_ token: AccessToken, boundTo context: String) throws -> Data {
        let box = try AES.GCM.seal(Data(token.secret.utf8), using: SymmetricKey(data: keys[keyID]!), authenticating: Data(context.utf8))
        guard let combined = box.combined else { throw VaultError(kind: .corrupt, message: "AES-GCM gave no combined form") }
        return combined
    }

    public func open(_ sealed: Data, boundTo context: String, keyID storedKeyID: String) throws -> AccessToken {
        guard let key = keys[storedKeyID] else {
            let held = keys.keys.sorted().joined(separator: " and ")
            throw VaultError(kind: .keyMismatch, message: "this token was sealed with key \(storedKeyID), but the key file holds key \(held): restore the original key file or reconnect the Page")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            let plain = try AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: Data(context.utf8))
            return AccessToken(String(decoding: plain, as: UTF8.self))
        } catch {
            throw VaultError(kind: .corrupt, message: "the stored token does not open with this key (tampered key or row); reconnect the Page")
        }
    }

    /// The erasure key of releases before the erasure key had a file of its own: an HKDF of
    /// the token key. Tombstones written then were hashed under it; `KeyCustody` writes it to
    /// the erasure key file once, so they keep matching after the token key is rotated away.
    public func legacyErasureKey(derivedFrom tokenKeyID: String) -> ErasureKey? {
        guard let key = keys[tokenKeyID] else { return nil }
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: key), info: Data("leadflow erasure tombstones".utf8),
                                             outputByteCount: 32)
        return ErasureKey(bytes: derived.withUnsafeBytes { Data($0) })
    }
}

/// The key that hashes erasure tombstones, in a 0600 file of its own beside the token key
/// (`erasure.key`): rotating or losing the token key never changes what a tombstone matches.
public struct ErasureKey: ErasureHasher {
    public let keyID: String
    /// The key's bytes (SymmetricKey is not Sendable); runs hash every lead's e-mail and id with it.
    private let keyBytes: Data

    public init(bytes: Data) {
        precondition(bytes.count == 32, "an erasure key is 32 bytes")
        keyBytes = bytes
        keyID = KeyFile.fingerprint(bytes)
    }

    /// 32 random bytes (tests, and the first `connect` through `KeyCustody`).
    public static func random() -> ErasureKey { ErasureKey(bytes: KeyFile.randomKey()) }

    /// The key in `keyFile`; nil when there is no such file.
    public static func open(keyFile: URL) throws -> ErasureKey? {
        try KeyFile.read(keyFile, what: "erasure key").map(ErasureKey.init(bytes:))
    }

    /// Writes this key to `keyFile` (mode 0600, durably, appearing whole); when a file is
    /// there already it must hold this very key.
    public func write(to keyFile: URL) throws {
        if try KeyFile.create(keyFile, bytes: keyBytes, what: "erasure key") { return }
        guard let existing = try Self.open(keyFile: keyFile), existing.keyID == keyID else {
            throw VaultError(kind: .keyMismatch, message: "the erasure key file \(keyFile.path) appeared meanwhile with another key; compare it with the other hosts' and keep one")
        }
    }

    /// Reads the key file, or creates it with a random key (the demo and tests).
    public static func openOrCreate(keyFile: URL) throws -> ErasureKey {
        if let key = try open(keyFile: keyFile) { return key }
        let key = random()
        try key.write(to: keyFile)
        return key
    }

    /// HMAC-SHA256 under the erasure key: tombstones only this deployment can match, and
    /// nobody can reverse from a list of addresses.
    public func hash(_ subject: String) -> String {
        Hex.lowercase(HMAC<SHA256>.authenticationCode(for: Data(subject.utf8), using: SymmetricKey(data: keyBytes)))
    }
}

/// 32-byte key files, mode 0600: read with the checks that make a key file safe, written so
/// a crash never leaves half a key under the final name.
enum KeyFile {
    /// A short fingerprint (12 hex digits of the SHA-256), stored beside what the key sealed or hashed.
    static func fingerprint(_ key: Data) -> String { Hex.lowercase(SHA256.hash(data: key).prefix(6)) }

    static func randomKey() -> Data { SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) } }

    /// The key, or nil when there is no file. A file others can read, or that is not 32
    /// bytes, is refused: it would make the encryption moot, or is not a key.
    static func read(_ url: URL, what: String) throws -> Data? {
        let path = url.path
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { return nil }
            throw VaultError(kind: .keyFile, message: "cannot read the \(what) file \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw VaultError(kind: .keyFile, message: "the \(what) file \(path) can be read by other users; run: chmod 600 \(path)")
        }
        // The file is there but not this user's to read (a Secret mounted root-only for a
        // non-root pod): say so, not that the key is malformed.
        guard access(path, R_OK) == 0 else {
            throw VaultError(kind: .keyFile, message: "the \(what) file \(path) cannot be read by this user (uid \(getuid())): \(String(cString: strerror(errno)))")
        }
        guard let data = FileManager.default.contents(atPath: path), data.count == 32 else {
            throw VaultError(kind: .keyFile, message: "the \(what) file \(path) is not a 32-byte key")
        }
        return data
    }

    /// Writes `bytes` to a temporary file beside `url` (0600, fsynced), then links it to
    /// `url`, which so appears whole or not at all, and fsyncs the folder. False when `url`
    /// exists already (nothing is overwritten).
    static func create(_ url: URL, bytes: Data, what: String) throws -> Bool {
        let folder = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let descriptor = Glibc.open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw VaultError(kind: .keyFile, message: "cannot create the \(what) file \(url.path): \(String(cString: strerror(errno)))")
        }
        defer { unlink(temporary.path) }
        // The mode given to open() is masked by the umask; set it explicitly.
        fchmod(descriptor, 0o600)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced else {
            throw VaultError(kind: .keyFile, message: "could not write the \(what) file \(url.path)")
        }
        guard link(temporary.path, url.path) == 0 else {
            if errno == EEXIST { return false }
            throw VaultError(kind: .keyFile, message: "cannot create the \(what) file \(url.path): \(String(cString: strerror(errno)))")
        }
        try syncFolder(folder, what: what)
        return true
    }

    /// Renames `source` over `target` (atomic: `target` holds the old key or the new, never
    /// neither), then fsyncs the folder so the rename survives a crash.
    static func replace(_ target: URL, with source: URL, what: String) throws {
        guard rename(source.path, target.path) == 0 else {
            throw VaultError(kind: .keyFile, message: "cannot move the \(what) file \(source.path) to \(target.path): \(String(cString: strerror(errno)))")
        }
        try syncFolder(target.deletingLastPathComponent(), what: what)
    }

    private static func syncFolder(_ folder: URL, what: String) throws {
        let descriptor = Glibc.open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw VaultError(kind: .keyFile, message: "cannot open \(folder.path) to sync the \(what) file") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw VaultError(kind: .keyFile, message: "cannot sync \(folder.path) after writing the \(what) file") }
    }
}

/// `leadflow key rotate`'s files: the new key written beside the token key file first, and
/// moved over it only once no stored secret is sealed under the old key.
public struct TokenKeyFiles: TokenKeyRotationFiles {
    public let keyFile: URL

    public init(keyFile: URL) {
        self.keyFile = keyFile
    }

    public func begin() throws -> (sealer: any TokenSealer, retiring: Set<String>) {
        guard let old = try KeyFile.read(keyFile, what: "token key") else {
            throw VaultError(kind: .keyFile, message: "there is no key file at \(keyFile.path): a rotation starts from the key the tokens are sealed with")
        }
        let next = TokenVault.nextKeyFile(for: keyFile)
        // A killed rotation's new key is kept: tokens may be sealed under it already.
        if try KeyFile.read(next, what: "new token key") == nil {
            _ = try KeyFile.create(next, bytes: KeyFile.randomKey(), what: "new token key")
        }
        let vault = try TokenVault.open(keyFile: keyFile)
        return (vault, Set([KeyFile.fingerprint(old)]).subtracting([vault.keyID]))
    }

    public func finish() throws {
        let next = TokenVault.nextKeyFile(for: keyFile)
        guard try KeyFile.read(next, what: "new token key") != nil else { return }
        try KeyFile.replace(keyFile, with: next, what: "token key")
    }
}

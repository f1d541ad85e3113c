import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LeadFlowCore

/// Why a token could not be sealed or opened.
public struct VaultError: LeadFlowError, Equatable {
    public enum Kind: String, Sendable { case keyFile = "key_file", keyMismatch = "key_mismatch", corrupt }
    public let kind: Kind
    public let message: String
    public var code: String { "secrets.\(kind.rawValue)" }
    public var disposition: Disposition { .fatal }
    public var description: String { "\(code): \(message)" }
}

/// Seals access tokens with AES-GCM under a 256-bit key kept in a 0600 key file, so the
/// database only ever holds ciphertext. Each ciphertext is bound to its connection
/// (instance and Page) as associated data: a ciphertext copied to another row won't open.
public struct TokenVault: TokenSealer {
    /// A short fingerprint of the key (not the key), stored beside each ciphertext.
    public let keyID: String
    /// The key's bytes (SymmetricKey is not Sendable; the vault is shared across tasks).
    private let keyBytes: Data
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }
    /// HKDF of the key for erasure tombstones, derived once: runs hash every lead's
    /// e-mail and id against the tombstones.
    private let erasureKeyBytes: Data

    init(key: SymmetricKey) {
        keyBytes = key.withUnsafeBytes { Data($0) }
        erasureKeyBytes = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Data("leadflow erasure tombstones".utf8), outputByteCount: 32)
            .withUnsafeBytes { Data($0) }
        let digest = SHA256.hash(data: keyBytes)
        keyID = Hex.lowercase(digest.prefix(6))
    }

    /// Reads the key file, or creates it (32 random bytes, mode 0600) when it is missing.
    /// A key file that others can read is refused: it would make the encryption moot.
    public static func openOrCreate(keyFile: URL) throws -> TokenVault {
        let path = keyFile.path
        try FileManager.default.createDirectory(at: keyFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            defer { close(descriptor) }
            // The mode given to open() is masked by the umask; set it explicitly.
            fchmod(descriptor, 0o600)
            let key = SymmetricKey(size: .bits256)
            let written = key.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written == 32, fsync(descriptor) == 0 else {
                unlink(path)
                throw VaultError(kind: .keyFile, message: "could not write the key file \(path)")
            }
            return TokenVault(key: key)
        }
        guard errno == EEXIST else {
            throw VaultError(kind: .keyFile, message: "cannot create the key file \(path): \(String(cString: strerror(errno)))")
        }
        return try open(keyFile: keyFile)
    }

    /// Reads an existing key file; never creates one (an erasure under a new key would
    /// write tombstones no run can match).
    public static func open(keyFile: URL) throws -> TokenVault {
        let path = keyFile.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw VaultError(kind: .keyFile, message: "there is no key file at \(path): point LEADFLOW_HOME or LEADFLOW_KEY_FILE at the one the runs use")
        }
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw VaultError(kind: .keyFile, message: "cannot read the key file \(path)")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw VaultError(kind: .keyFile, message: "the key file \(path) can be read by other users; run: chmod 600 \(path)")
        }
        // The file is there but not this user's to read (a Secret mounted root-only for a
        // non-root pod): say so, not that the key is malformed.
        guard access(path, R_OK) == 0 else {
            throw VaultError(kind: .keyFile, message: "the key file \(path) cannot be read by this user (uid \(getuid())): \(String(cString: strerror(errno)))")
        }
        guard let data = FileManager.default.contents(atPath: path), data.count == 32 else {
            throw VaultError(kind: .keyFile, message: "the key file \(path) is not a 32-byte key")
        }
        return TokenVault(key: SymmetricKey(data: data))
    }

    /// nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes).
    public func seal(_ token: AccessToken, boundTo context: String) throws -> Data {
        let box = try AES.GCM.seal(Data(token.secret.utf8), using: key, authenticating: Data(context.utf8))
        guard let combined = box.combined else { throw VaultError(kind: .corrupt, message: "AES-GCM gave no combined form") }
        return combined
    }

    public func open(_ sealed: Data, boundTo context: String, keyID storedKeyID: String) throws -> AccessToken {
        guard storedKeyID == keyID else {
            throw VaultError(kind: .keyMismatch, message: "this token was sealed with key \(storedKeyID), but the key file holds key \(keyID): restore the original key file or reconnect the Page")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            let plain = try AES.GCM.open(box, using: key, authenticating: Data(context.utf8))
            return AccessToken(String(decoding: plain, as: UTF8.self))
        } catch {
            throw VaultError(kind: .corrupt, message: "the stored token does not open with this key (tampered key or row); reconnect the Page")
        }
    }

    /// HMAC-SHA256 under a key derived (HKDF) from the sealing key: tombstones that only
    /// this deployment can match, and nobody can reverse from a list of addresses.
    public func erasureHash(_ subject: String) -> String {
        Hex.lowercase(HMAC<SHA256>.authenticationCode(for: Data(subject.utf8), using: SymmetricKey(data: erasureKeyBytes)))
    }
}

import Foundation

/// A connection's sealed secrets as stored: its token and its notification address, each
/// with the id of the key that sealed it.
public struct SealedSecrets: Sendable, Equatable {
    public let connectionID: Int64
    public let instance: String
    public let pageID: String
    public let token: Data
    public let tokenKeyID: String
    public let address: Data?
    public let addressKeyID: String?

    public init(connectionID: Int64, instance: String, pageID: String, token: Data, tokenKeyID: String, address: Data?,
                addressKeyID: String?) {
        self.connectionID = connectionID
        self.instance = instance
        self.pageID = pageID
        self.token = token
        self.tokenKeyID = tokenKeyID
        self.address = address
        self.addressKeyID = addressKeyID
    }

    /// The same secrets sealed again by `sealer` (opened with whichever key sealed them).
    public func resealed(by sealer: any TokenSealer) throws -> SealedSecrets {
        let tokenContext = ConnectionRecord.sealContext(instance: instance, pageID: pageID)
        let newToken = try sealer.seal(try sealer.open(token, boundTo: tokenContext, keyID: tokenKeyID), boundTo: tokenContext)
        var newAddress: Data?
        if let address, let addressKeyID {
            let addressContext = SealedAddress.context(instance: instance, pageID: pageID)
            newAddress = try sealer.seal(try sealer.open(address, boundTo: addressContext, keyID: addressKeyID), boundTo: addressContext)
        }
        return SealedSecrets(connectionID: connectionID, instance: instance, pageID: pageID, token: newToken, tokenKeyID: sealer.keyID,
                             address: newAddress, addressKeyID: newAddress == nil ? nil : sealer.keyID)
    }
}

/// Where sealed secrets live, for `leadflow key rotate` (Postgres: `KeyStore`).
public protocol SealedSecretRepository: Sendable {
    /// One rotation at a time (a session lock).
    func lockRotation() async throws
    func unlockRotation() async throws
    /// Connections with a token or an address sealed under a key other than `keyID`.
    func sealed(notUnder keyID: String) async throws -> [SealedSecrets]
    /// Writes one connection's new secrets, if they still are those in `old` (one statement,
    /// its own transaction, recording the key id that sealed them); false when another
    /// command changed them meanwhile.
    func replace(_ old: SealedSecrets, with new: SealedSecrets) async throws -> Bool
    /// One transaction, with connections locked against writers: when no secret is sealed
    /// under any of `keyIDs`, records them retired (a `connect` that sealed under one of
    /// them meanwhile is then refused) and returns 0; else how many connections still are.
    func retire(_ keyIDs: Set<String>, at: Date) async throws -> Int
}

/// The token key files of a rotation (`TokenVault`'s key file and the new key beside it).
public protocol TokenKeyRotationFiles: Sendable {
    /// Writes a new key beside the key file (or finds the one a killed rotation wrote
    /// there) and returns a sealer that opens with the old and the new keys and seals with
    /// the new one, and the ids of the old keys.
    func begin() throws -> (sealer: any TokenSealer, retiring: Set<String>)
    /// The new key takes the key file's place (an atomic rename): the old key is gone.
    func finish() throws
}

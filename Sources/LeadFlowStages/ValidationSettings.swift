import LeadFlowCore

/// What the connect command and the preflight check against (from the pipeline and the environment).
public struct ValidationSettings: Sendable {
    public var appID: String?
    public var appSecret: String?
    public var requiredPermissions: [String]
    public var policy: TokenPolicy

    public init(appID: String? = nil, appSecret: String? = nil,
                requiredPermissions: [String] = PreflightRules.defaultRequiredPermissions, policy: TokenPolicy = TokenPolicy()) {
        self.appID = appID
        self.appSecret = appSecret
        self.requiredPermissions = requiredPermissions
        self.policy = policy
    }

    /// `APP_ID|APP_SECRET`, the app token `debug_token` wants, when the app is configured.
    var appToken: AccessToken? {
        guard let appID, let appSecret, !appID.isEmpty, !appSecret.isEmpty else { return nil }
        return AccessToken("\(appID)|\(appSecret)")
    }
}

import LeadFlowCore

/// What the connect command and the preflight check against (from the pipeline and the environment).
public struct ValidationSettings: Sendable {
    public var appID: String?
    public var appSecret: String?
    public var requiredPermissions: [String]
    public var policy: TokenPolicy
    /// A run does not ask Graph again about a token it verified this recently (a token or a
    /// permission that fails meanwhile fails the run's own calls, which void the connection
    /// from that instant). `leadflow check` always asks.
    public var recheckAfter: Duration

    public init(appID: String? = nil, appSecret: String? = nil,
                requiredPermissions: [String] = PreflightRules.defaultRequiredPermissions, policy: TokenPolicy = TokenPolicy(),
                recheckAfter: Duration = .seconds(3600)) {
        self.appID = appID
        self.appSecret = appSecret
        self.requiredPermissions = requiredPermissions
        self.policy = policy
        self.recheckAfter = recheckAfter
    }

    /// The app's id and secret. Without them nothing works on Facebook: a short-lived token
    /// cannot be exchanged (it lasts an hour, a connection 90 days), `debug_token` needs the
    /// app token, and an app that requires `appsecret_proof` refuses every call.
    public func app() throws -> (id: String, secret: String) {
        guard let appID, !appID.isEmpty, let appSecret, !appSecret.isEmpty else { throw AppNotConfigured() }
        return (appID, appSecret)
    }

    /// `APP_ID|APP_SECRET`, the app token `debug_token` wants.
    func appToken() throws -> AccessToken {
        let app = try app()
        return AccessToken("\(app.id)|\(app.secret)")
    }
}

/// The Facebook app is not configured: exit 64, in one sentence.
public struct AppNotConfigured: LeadFlowError, Equatable {
    public init() {}
    public var code: String { "config.app_missing" }
    public var disposition: Disposition { .fatal }
    public var description: String {
        "set LEADFLOW_APP_ID and LEADFLOW_APP_SECRET (or LEADFLOW_APP_SECRET_FILE): without the app secret a 1-hour token cannot be exchanged to carry a 90-day connection, and Facebook refuses calls without appsecret_proof"
    }
}

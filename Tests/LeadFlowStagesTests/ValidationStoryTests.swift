import Foundation
import LeadFlowCore
import LeadFlowGraph
import LeadFlowHTTP
import LeadFlowPostgres
import LeadFlowStages
import LeadFlowStore
import LeadFlowTestSupport
import Testing

/// The 200-day story of one connection, with the real parts: Postgres, the Graph fake over
/// libcurl, AES-GCM with a key file. Day 0 is 2026-01-05T09:00:00Z.
@Suite struct ValidationStoryTests {
    static let day = TestDays(zero: "2026-01-05T09:00:00Z")
    static func iso(_ n: Double) -> String { UTCTime.iso8601(day(n)) }

    /// Facebook's real lifecycle: every token is a fresh short-lived user token from the
    /// login dialog (1 h), issued on the day its user authenticates; LeadFlow exchanges it
    /// (60 days) and keeps only the Page token, which never expires; data access ends 90
    /// days after the user's last authorisation.
    static func scenario() -> GraphScenario {
        GraphScenario(
            pages: [.init(id: "1001", name: "Acme Analytics", forms: [.init(id: "2001", name: "Webinar",
                                                                             generate: .init(count: 50, start: "2026-01-05T10:00:00+0000"))])],
            tokens: [
                .user("EAAB-story-user-one", id: "42", name: "Priya Shah", pages: ["1001"], issuedAt: iso(0)),
                .user("EAAB-story-user-two", id: "42", name: "Priya Shah", pages: ["1001"], issuedAt: iso(100),
                      events: [.init(at: iso(130), kind: .revokePermission, permission: "leads_retrieval")]),
                .user("EAAB-story-user-three", id: "77", name: "Ana Ruiz", pages: ["1001"], issuedAt: iso(140),
                      events: [.init(at: iso(160), kind: .invalidate)]),
                .user("EAAB-story-user-four", id: "77", name: "Ana Ruiz", pages: ["1001"], issuedAt: iso(170)),
            ])
    }

    struct World {
        let fake: GraphFake
        let store: ConnectionStore
        let connector: Connector
        let preflight: PreflightStage
        let db: PostgresConnection
        let home: URL
    }

    func world() throws -> World {
        let db = try PostgresConnection(conninfo: try TestDatabase.create("story"))
        let session = try PostgresSession(conninfo: db.conninfo)
        try Migrator().migrate(db)
        let scenario = Self.scenario()
        let fake = try GraphFake(scenario: scenario, now: Self.day(0))
        let home = try Repository.temporaryFolder("story")
        let vault = try TokenVault.openOrCreate(keyFile: home.appendingPathComponent("token.key"))
        let graph = GraphClient(transport: try CurlHTTPClient(), configuration: .init(baseURL: fake.baseURL, appSecret: scenario.appSecret),
                                sleeper: RecordingSleeper())
        let settings = ValidationSettings(appID: scenario.appID, appSecret: scenario.appSecret)
        let store = ConnectionStore(session)
        return World(fake: fake, store: store,
                     connector: Connector(graph: graph, repository: store, sealer: vault, settings: settings),
                     preflight: PreflightStage(graph: graph, repository: store, sealer: vault, settings: settings),
                     db: db, home: home)
    }

    func check(_ world: World, at instant: Date) async throws -> PreflightStage.Result {
        world.fake.now = instant
        let results = try await world.preflight.checkAll(now: instant)
        #expect(results.count == 1)
        return results[0]
    }

    func connect(_ world: World, _ token: String, at instant: Date) async throws -> ConnectResult {
        world.fake.now = instant
        return try await world.connector.connect(.init(instance: "acme", pageID: "1001", label: "acme-main", token: AccessToken(token)),
                                                 now: instant)
    }

    func reminderCount(_ world: World) throws -> Int {
        try world.db.query("SELECT count(*) FROM reminders")[0].int(0) ?? -1
    }

    @Test func twoHundredDays() async throws {
        let world = try world()

        // Day 0: the Connector Authenticator (user 42) connects the Page with a fresh,
        // short-lived user token. LeadFlow keeps the Page token, not the user token.
        let first = try await connect(world, "EAAB-story-user-one", at: Self.day(0))
        #expect(!first.saved.reauthenticated)
        #expect(first.authenticatorUserID == "42")
        #expect(first.authenticatorName == "Priya Shah")
        #expect(first.pageName == "Acme Analytics")
        #expect(first.expiresAt == Self.day(90))
        #expect(first.reminderAt == Self.day(75))
        let stored = try #require(try await world.store.connection(label: "acme-main"))
        let kept = try TokenVault.open(keyFile: world.home.appendingPathComponent("token.key"))
            .open(stored.tokenCiphertext, boundTo: stored.sealContext, keyID: stored.tokenKeyID)
        let described = try #require(world.fake.describeToken(kept.secret))
        #expect(described.type == "PAGE" && described.pageID == "1001" && described.expiresAt == nil,
                "the Page token got with the long-lived user token, which never expires")
        #expect(stored.facebookExpiresAt == nil)
        #expect(stored.facebookDataAccessExpiresAt == Self.day(90))
        #expect(stored.userTokenExpiresAt == Self.day(60), "the exchange's expires_in: 5,184,000 s")

        // Days 1–74: healthy, no reminder; day 61 too, although the long-lived user token
        // ended on day 60: nothing daily depends on it.
        for n in 1...74 {
            let result = try await check(world, at: Self.day(Double(n)))
            #expect(result.outcome == .checked(.healthy), "day \(n)")
        }
        #expect(try await world.store.voidPeriods(connectionID: stored.id).isEmpty)
        #expect(try reminderCount(world) == 0)
        // One second before day 75 is still healthy; day 75 itself is due.
        #expect(try await check(world, at: Self.day(75).addingTimeInterval(-1)).outcome == .checked(.healthy))
        let due = try await check(world, at: Self.day(75))
        #expect(due.outcome == .checked(.reminderDue))
        #expect(due.wroteReminder)
        for n in 76...89 {
            let result = try await check(world, at: Self.day(Double(n)))
            #expect(result.outcome == .checked(.reminderDue), "day \(n)")
            #expect(!result.wroteReminder, "day \(n): one reminder per cycle")
        }
        #expect(try reminderCount(world) == 1)
        #expect(try await world.store.voidPeriods(connectionID: stored.id).isEmpty, "no void period from day 1 to 89")

        // Day 90: the cycle ends at the exact expiry instant; no Graph call is made.
        #expect(try await check(world, at: Self.day(90).addingTimeInterval(-1)).outcome == .checked(.reminderDue))
        let requestsBefore = world.fake.requestLog.count
        let expired = try await check(world, at: Self.day(90).addingTimeInterval(3 * 3600))
        #expect(expired.outcome == .checked(.void(cause: .tokenExpired, detail: "the authentication cycle ended", since: Self.day(90))))
        #expect(expired.openedVoidPeriod)
        #expect(expired.token == nil, "nothing to extract with")
        #expect(world.fake.requestLog.count == requestsBefore, "no request on a token known to be bad")
        for n in 91...99 {
            let result = try await check(world, at: Self.day(Double(n)))
            #expect(!result.openedVoidPeriod, "day \(n): one open period, never two")
        }
        #expect(world.fake.requestLog.count == requestsBefore)

        // Day 100: reauthentication closes the period at that instant.
        let second = try await connect(world, "EAAB-story-user-two", at: Self.day(100))
        #expect(second.saved.reauthenticated)
        #expect(second.saved.closedVoidPeriod?.cause == .tokenExpired)
        #expect(try await check(world, at: Self.day(101)).outcome == .checked(.healthy))

        // Day 130: leads_retrieval revoked (at 09:00); the first failed check, at 14:00, opens the period.
        #expect(try await check(world, at: Self.day(129)).outcome == .checked(.healthy))
        let revoked = try await check(world, at: Self.day(130).addingTimeInterval(5 * 3600))
        guard case .checked(.void(.permissionRevoked, let detail, let since)) = revoked.outcome else {
            Issue.record("expected permission_revoked, got \(revoked.outcome)")
            return
        }
        #expect(detail.contains("leads_retrieval"))
        #expect(since == Self.day(130).addingTimeInterval(5 * 3600))

        // Day 140: a different Facebook user (77) reauthenticates; the change is recorded.
        let third = try await connect(world, "EAAB-story-user-three", at: Self.day(140))
        #expect(third.saved.previousAuthenticator == "42")
        #expect(third.authenticatorUserID == "77")
        #expect(third.authenticatorName == "Ana Ruiz")

        // Day 160: the user changed their password (190/460): token_invalidated.
        let invalidated = try await check(world, at: Self.day(160).addingTimeInterval(4 * 3600))
        guard case .checked(.void(.tokenInvalidated, _, let invalidSince)) = invalidated.outcome else {
            Issue.record("expected token_invalidated, got \(invalidated.outcome)")
            return
        }
        #expect(invalidSince == Self.day(160).addingTimeInterval(4 * 3600))

        // Day 170: reauthenticated; day 200: healthy.
        _ = try await connect(world, "EAAB-story-user-four", at: Self.day(170))
        #expect(try await check(world, at: Self.day(200)).outcome == .checked(.healthy))

        let record = try #require(try await world.store.connection(label: "acme-main"))
        let periods = try await world.store.voidPeriods(connectionID: record.id)
        #expect(periods.map(\.cause) == [.tokenExpired, .permissionRevoked, .tokenInvalidated])
        #expect(periods.map(\.startedAt) == [Self.day(90), Self.day(130).addingTimeInterval(5 * 3600), Self.day(160).addingTimeInterval(4 * 3600)])
        #expect(periods.map(\.endedAt) == [Self.day(100), Self.day(140), Self.day(170)])
        let kinds = try await world.store.authEvents(connectionID: record.id).map(\.kind).filter { $0 != "verified" }
        #expect(kinds == ["authenticated", "expiring", "expired", "reauthenticated", "revoked", "reauthenticated",
                          "authenticator_changed", "invalid", "reauthenticated"])
        let verified = try await world.store.authEvents(connectionID: record.id).filter { $0.kind == "verified" }.count
        // One a calendar day while healthy or due: days 1–74, 75 (twice checked), 76–89,
        // 90 (one second before the end), 101, 129 and 200.
        #expect(verified == 74 + 1 + 14 + 1 + 3)
        #expect(record.authenticatorUserID == "77")
    }

    @Test func tokensAreStoredSealedAndBoundToTheirConnection() async throws {
        let world = try world()
        _ = try await connect(world, "EAAB-story-user-one", at: Self.day(0))
        // The raw bytes of the row hold no trace of any token.
        let raw = try world.db.query("SELECT c::text FROM connections c")[0]
        let text = try #require(try raw.string(0))
        #expect(!text.contains("EAAB-story"))
        #expect(!text.contains("story-user-one"))
        let keyFile = world.home.appendingPathComponent("token.key")
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // A ciphertext moved to another connection's context does not open.
        let record = try #require(try await world.store.connection(label: "acme-main"))
        let vault = try TokenVault.openOrCreate(keyFile: keyFile)
        let opened = try vault.open(record.tokenCiphertext, boundTo: record.sealContext, keyID: record.tokenKeyID)
        #expect(opened != AccessToken("EAAB-story-user-one"), "the user token is never kept")
        #expect(world.fake.describeToken(opened.secret)?.type == "PAGE")
        #expect(!text.contains(opened.secret))
        #expect(throws: VaultError.self) {
            try vault.open(record.tokenCiphertext, boundTo: ConnectionRecord.sealContext(instance: "other", pageID: "1001"), keyID: record.tokenKeyID)
        }
        // Another key (a replaced or tampered key file) is refused with a clear error.
        let otherHome = try Repository.temporaryFolder("otherkey")
        let other = try TokenVault.openOrCreate(keyFile: otherHome.appendingPathComponent("token.key"))
        let mismatch = #expect(throws: VaultError.self) {
            try other.open(record.tokenCiphertext, boundTo: record.sealContext, keyID: record.tokenKeyID)
        }
        #expect(mismatch?.kind == .keyMismatch)
    }

    @Test func aKeyFileOthersCanReadIsRefused() async throws {
        let home = try Repository.temporaryFolder("keymode")
        let keyFile = home.appendingPathComponent("token.key")
        _ = try TokenVault.openOrCreate(keyFile: keyFile)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile.path)
        let error = #expect(throws: VaultError.self) { try TokenVault.openOrCreate(keyFile: keyFile) }
        #expect(error?.description.contains("chmod 600") == true)
    }

    @Test func connectRefusesATokenWithoutLeadAccessAndSaysWhatToDo() async throws {
        let world = try world()
        world.fake.addTokenEvent(.init(at: Self.iso(0), kind: .loseLeadAccess), token: "EAAB-story-user-one")
        let refusal = await #expect(throws: ConnectRefusal.self) {
            _ = try await connect(world, "EAAB-story-user-one", at: Self.day(0).addingTimeInterval(60))
        }
        #expect(refusal?.description.contains("Leads Access Manager") == true)
        #expect(try await world.store.all().isEmpty, "nothing stored")
    }

    @Test func connectRefusesAMissingPermissionByName() async throws {
        let world = try world()
        world.fake.addTokenEvent(.init(at: Self.iso(0), kind: .revokePermission, permission: "ads_management"), token: "EAAB-story-user-one")
        let refusal = await #expect(throws: ConnectRefusal.self) {
            _ = try await connect(world, "EAAB-story-user-one", at: Self.day(0).addingTimeInterval(60))
        }
        #expect(refusal?.reason.contains("ads_management") == true)
    }

    /// A reauthentication during a long run: the run's copy of the record still holds the
    /// old token, which Graph now refuses. The void decision is taken under the connection's
    /// row lock against the current record, so the reauthenticated connection is not voided
    /// again (and never from an instant before its reauthentication).
    @Test func aReauthenticationDuringARunIsNotUndoneByTheRunsStaleRecord() async throws {
        let world = try world()
        _ = try await connect(world, "EAAB-story-user-three", at: Self.day(140))
        let stale = try #require(try await world.store.all().first)
        // Day 160 the user's password changes (the token is invalidated); at 10:00 the run
        // reads the connections; at 10:05 the user reauthenticates; at 10:10 the run's
        // preflight of its stale copy meets the invalidated token.
        let reauthenticated = try await connect(world, "EAAB-story-user-four", at: Self.day(170))
        #expect(reauthenticated.saved.reauthenticated)
        world.fake.now = Self.day(170).addingTimeInterval(300)
        let checked = try await world.preflight.check(stale, now: Self.day(170).addingTimeInterval(300), recheck: true)
        #expect(checked.outcome == .superseded)
        #expect(checked.token == nil, "nothing is read with the replaced token")
        #expect(try await world.store.voidPeriods(connectionID: stale.id).isEmpty)
        // The current record checks healthy; a void decision about the current cycle still
        // opens, and never before the authentication it ends.
        #expect(try await check(world, at: Self.day(171)).outcome == .checked(.healthy))
        let current = try #require(try await world.store.all().first)
        let opening = try await world.store.openVoidPeriod(connectionID: current.id, cause: .tokenInvalidated, detail: "test",
                                                            since: Self.day(100), now: Self.day(172), cycle: current.authenticatedAt)
        #expect(opening == .opened)
        #expect(try await world.store.voidPeriods(connectionID: current.id).first?.startedAt == current.authenticatedAt)
    }
}

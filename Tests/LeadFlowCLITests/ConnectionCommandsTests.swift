import Foundation
import LeadFlowCore
import LeadFlowPostgres
import LeadFlowTestSupport
import Testing

/// connect, check, status and reminders as a user runs them: the built binary against the
/// Graph fake and the real Postgres, with the clock moved by LEADFLOW_NOW.
@Suite struct ConnectionCommandsTests {
    static let token = "EAAB-cli-secret-\(UInt32.random(in: 0...UInt32.max))"
    static let freshToken = "EAAB-cli-fresh-\(UInt32.random(in: 0...UInt32.max))"
    static let day = TestDays(zero: "2026-03-02T08:00:00Z")

    let fake: GraphFake
    let databaseURL: String
    let home: URL
    let run: LeadFlowCLI
    /// Everything the commands printed, to scan for the token at the end.
    var outputs: [String] = []

    init() throws {
        var scenario = GraphScenario(
            pages: [.init(id: "1001", name: "Acme", forms: [.init(id: "2001", name: "Webinar")])],
            tokens: [.user(Self.token, name: "Priya Shah", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(0))),
                     .user(Self.freshToken, name: "Priya Shah", pages: ["1001"], issuedAt: UTCTime.iso8601(Self.day(100)))])
        fake = try GraphFake(scenario: scenario, now: Self.day(0))
        databaseURL = try TestDatabase.create("clicmd")
        home = try Repository.temporaryFolder("clihome")
        run = LeadFlowCLI(databaseURL: databaseURL, home: home, fake: fake, days: Self.day)
    }

    @Test func aTokenGivenAsAnArgumentIsRefused() async throws {
        let result = try await run(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main", "--token", Self.token], day: 0)
        #expect(result.status == 64)
        #expect(result.stderr.contains("never pass a token as an argument"))
        #expect(!result.stderr.contains(Self.token))
    }

    @Test mutating func connectStatusRemindersAndCheckAcrossACycle() async throws {
        let connect = try await run(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main", "--log-level", "trace"],
                              day: 0, input: Self.token + "\n")
        outputs += [connect.stdout, connect.stderr]
        #expect(connect.status == 0, "\(connect.stderr)")
        #expect(connect.stderr.contains("connected acme-main (Page 1001 \"Acme\") as Priya Shah (Facebook user 42)"), "\(connect.stderr)")
        #expect(connect.stderr.contains("reminder due 2026-05-16T08:00:00Z"))

        let keyMode = try FileManager.default.attributesOfItem(atPath: home.appendingPathComponent("token.key").path)[.posixPermissions] as? Int
        #expect(keyMode == 0o600)

        let healthy = try await run(["status", "--json"], day: 10)
        outputs += [healthy.stdout, healthy.stderr]
        #expect(healthy.status == 0)
        let status = try JSONSerialization.jsonObject(with: Data(healthy.stdout.utf8)) as? [String: [[String: Any]]]
        let row = try #require(status?["connections"]?.first)
        #expect(row["status"] as? String == "healthy")
        #expect(row["age_days"] as? Double == 10)
        #expect(row["days_until_reminder"] as? Double == 65)
        #expect(row["days_until_expiry"] as? Double == 80)
        #expect(row["authenticator_user_id"] as? String == "42")

        let reminders = try await run(["reminders", "--json"], day: 76)
        outputs += [reminders.stdout, reminders.stderr]
        let listed = try JSONSerialization.jsonObject(with: Data(reminders.stdout.utf8)) as? [String: [[String: Any]]]
        #expect(listed?["reminders"]?.count == 1)
        #expect(listed?["reminders"]?.first?["kind"] as? String == "reauthentication_due")
        #expect(listed?["reminders"]?.first?["due_at"] as? String == "2026-05-16T08:00:00Z")
        let again = try await run(["reminders"], day: 80)
        outputs += [again.stdout, again.stderr]
        #expect(again.stdout.components(separatedBy: "reauthentication_due").count == 2, "still one reminder")

        let check = try await run(["check", "--log-level", "trace"], day: 95)
        outputs += [check.stdout, check.stderr]
        #expect(check.status == 2)
        #expect(check.stderr.contains("token_expired since 2026-05-31T08:00:00Z"))
        let void = try await run(["status"], day: 96)
        outputs += [void.stdout, void.stderr]
        #expect(void.stdout.contains("void (token_expired)"))

        // The same token cannot serve again (it lasted an hour, and data access ended on day
        // 90): the authenticator logs in again and hands over a fresh one.
        let stale = try await run(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 100, input: Self.token)
        outputs += [stale.stdout, stale.stderr]
        #expect(stale.status == 64)
        let reconnect = try await run(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 100, input: Self.freshToken)
        outputs += [reconnect.stdout, reconnect.stderr]
        #expect(reconnect.status == 0, "\(reconnect.stderr)")
        #expect(reconnect.stderr.contains("closed the void period open since 2026-05-31T08:00:00Z (token_expired)"))
        let healthyAgain = try await run(["check"], day: 101)
        #expect(healthyAgain.status == 0)

        for text in outputs { #expect(!text.contains(Self.token) && !text.contains(Self.freshToken)) }
        let db = try PostgresConnection(conninfo: databaseURL)
        let dump = try db.query("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM connections) t")[0].string(0) ?? ""
        #expect(!dump.contains(Self.token) && !dump.contains(Data(Self.token.utf8).map { String(format: "%02x", $0) }.joined()))
        let events = try db.query("SELECT string_agg(coalesce(cause, ''), ' ') FROM auth_events")[0].string(0) ?? ""
        #expect(!events.contains(Self.token))
    }

    @Test func aRefusedConnectNamesWhatIsMissing() async throws {
        fake.addTokenEvent(.init(at: UTCTime.iso8601(Self.day(0)), kind: .revokePermission, permission: "pages_manage_ads"), token: Self.token)
        let result = try await run(["connect", "--instance", "acme", "--page", "1001", "--name", "acme-main"], day: 0.01, input: Self.token)
        #expect(result.status == 64)
        #expect(result.stderr.contains("missing permission: pages_manage_ads"), "\(result.stderr)")
        #expect(result.stderr.contains("To fix:"))
        #expect(!result.stderr.contains(Self.token))
    }
}

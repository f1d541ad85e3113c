import Foundation
import LeadFlowCore
import LeadFlowGraph
import LeadFlowStages
import LeadFlowHTTP
import LeadFlowTestSupport
import Testing

/// The scenario file format and the fake's token endpoints, read through the real client.
@Suite struct GraphFakeScenarioTests {
    static let token = AccessToken("EAAB-fake-page-token-1001")

    func setUp(now: String) throws -> (GraphFake, GraphClient) {
        let scenario = try GraphScenario.load(Repository.fixture("scenarios/small.json"))
        let fake = try GraphFake(scenario: scenario, now: UTCTime.parse(now)!)
        let client = GraphClient(transport: try CurlHTTPClient(),
                                 configuration: .init(baseURL: fake.baseURL, pageSize: 25, appSecret: scenario.appSecret),
                                 sleeper: RecordingSleeper())
        return (fake, client)
    }

    @Test func aScenarioFilePlaysEveryFormWithItsFault() async throws {
        let (fake, client) = try setUp(now: "2026-11-20T00:00:00Z")
        let sink = CollectingSink()
        let outcome = try await ConnectionExtractor(client: client, concurrency: 3)
            .extract(pageID: "1001", token: Self.token, window: { _ in LeadWindow(from: nil, to: fake.now) }, sink: sink)
        guard case .completed(let forms, _) = outcome else {
            Issue.record("expected completion, got \(outcome)")
            return
        }
        #expect(forms.map(\.status).sorted() == ["ACTIVE", "ACTIVE", "ARCHIVED"])
        let ids = sink.pages.flatMap { $0.leads.map(\.id) }
        #expect(ids.count == 320)
        #expect(Set(ids) == Set(fake.allVisibleLeads().map(\.id)))
        #expect(fake.requestLog.contains { $0.status == 500 }, "the scenario's fault was served, and retried")
        let french = sink.pages.flatMap(\.leads).first { $0.formID == "2002" }
        #expect(french?.fieldData.contains { $0.name == "Quel est votre budget annuel ?" } == true)
        #expect(sink.pages.flatMap(\.leads).filter { $0.formID == "2003" }.allSatisfy { $0.isOrganic == true && $0.adID == nil })
    }

    @Test func leadsArriveAsTheFakesClockMoves() async throws {
        let (fake, client) = try setUp(now: "2026-11-01T00:00:00Z")
        var seen = 0
        _ = try await client.leads(formID: "2001", window: LeadWindow(from: nil, to: fake.now), token: Self.token) { seen += $0.leads.count }
        #expect(seen == 0, "the first lead is stamped at `now` itself, which [from, now) excludes")
        fake.now = UTCTime.parse("2026-11-01T01:00:00Z")!
        seen = 0
        _ = try await client.leads(formID: "2001", window: LeadWindow(from: nil, to: fake.now), token: Self.token) { seen += $0.leads.count }
        #expect(seen == 6, "00:00 to 00:50; 01:00 is the excluded upper bound")
    }

    struct DebugToken: Decodable {
        struct Inner: Decodable {
            let is_valid: Bool
            let user_id: String?
            let expires_at: Int64
            let scopes: [String]
        }
        let data: Inner
    }

    struct Permissions: Decodable {
        struct Entry: Decodable { let permission: String; let status: String }
        let data: [Entry]
    }

    @Test func tokenEndpointsFollowTheTimeline() async throws {
        let (fake, client) = try setUp(now: "2026-11-20T00:00:00Z")
        let app = AccessToken("1234567890|fake-app-secret")
        let debug = try await client.object(DebugToken.self, path: "debug_token", query: [("input_token", Self.token.secret)],
                                            token: app, context: "debug_token")
        #expect(debug.data.is_valid)
        #expect(debug.data.user_id == "42")
        #expect(debug.data.expires_at == Int64(UTCTime.parse("2026-12-30T00:00:00Z")!.timeIntervalSince1970))
        #expect(debug.data.scopes.contains("leads_retrieval"))

        // On Dec 10 the scenario revokes leads_retrieval: the Page token's scopes lose it,
        // and leads are refused. `me/permissions` is a user token's edge: a Page token's
        // `me` is the Page, which has no such field.
        fake.now = UTCTime.parse("2026-12-11T00:00:00Z")!
        let revoked = try await client.object(DebugToken.self, path: "debug_token", query: [("input_token", Self.token.secret)],
                                              token: app, context: "debug_token")
        #expect(!revoked.data.scopes.contains("leads_retrieval"))
        let notAUser = await #expect(throws: GraphError.self) {
            _ = try await client.object(Permissions.self, path: "me/permissions", token: Self.token, context: "permissions")
        }
        #expect(notAUser?.apiCode == 2500, "an edge the Page node does not have")
        let error = await #expect(throws: GraphError.self) {
            _ = try await client.forms(pageID: "1001", token: Self.token)
        }
        #expect(error?.voidCause == .permissionRevoked)

        // On Dec 30 it expires.
        fake.now = UTCTime.parse("2026-12-30T00:00:00Z")!
        let expired = await #expect(throws: GraphError.self) {
            _ = try await client.forms(pageID: "1001", token: Self.token)
        }
        #expect(expired?.voidCause == .tokenExpired)
        #expect(expired?.message.contains("Session has expired on Tuesday, 29-Dec-26 16:00:00 PST") == true,
                "Graph's own wording, in Pacific time: \(expired?.message ?? "")")
    }
}

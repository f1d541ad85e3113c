import Foundation
import LeadFlowCore
import Testing

/// Every error of GRAPH_API.md's table, from its real envelope in fixtures/graph/errors.
@Suite struct GraphErrorTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/graph/errors")

    func error(_ name: String, status: Int = 400) throws -> GraphError {
        GraphError.from(status: status, body: try Data(contentsOf: Self.fixtures.appendingPathComponent("\(name).json")),
                        context: "leads of form 2001")
    }

    @Test(arguments: [
        ("token_expired_463", Disposition.void, VoidCause.tokenExpired),
        ("password_changed_460", .void, .tokenInvalidated),
        ("app_removed_458", .void, .tokenInvalidated),
        ("user_logged_out_467", .void, .tokenInvalidated),
        ("invalid_token_190", .void, .tokenInvalidated),
        ("session_invalid_102", .void, .tokenInvalidated),
        ("permission_10", .void, .permissionRevoked),
        ("permission_200", .void, .permissionRevoked),
        ("object_missing_100_33", .void, .leadAccessLost),
    ] as [(String, Disposition, VoidCause)])
    func tokenAndPermissionErrorsMakeTheConnectionVoid(name: String, disposition: Disposition, cause: VoidCause) throws {
        let error = try error(name)
        #expect(error.disposition == disposition)
        #expect(error.voidCause == cause)
    }

    @Test(arguments: ["app_rate_limit_4", "user_rate_limit_17", "page_rate_limit_32", "custom_rate_limit_613", "lead_gen_rate_limit_80005"])
    func rateLimitsAreRetriedAfterAWait(name: String) throws {
        let error = try error(name)
        #expect(error.isRateLimit)
        #expect(error.disposition == .retry)
        #expect(error.voidCause == nil)
    }

    @Test func transientAndReduceDataAreRetried() throws {
        #expect(try error("unknown_1", status: 500).disposition == .retry)
        #expect(try error("service_unavailable_2", status: 500).disposition == .retry)
        let reduce = try error("reduce_data_500", status: 500)
        #expect(reduce.asksToReduceData)
        #expect(reduce.disposition == .retry)
    }

    @Test func blockedAndUnknownErrorsAreFatal() throws {
        #expect(try error("temporarily_blocked_368").disposition == .fatal)
        #expect(try error("invalid_cursor_100").disposition == .fatal)
        #expect(try error("invalid_cursor_100").voidCause == nil, "code 100 without subcode 33 is not lost access")
    }

    @Test func aBodyThatIsNotAnEnvelopeKeepsTheStatus() {
        let error = GraphError.from(status: 502, body: Data("<html>Bad Gateway</html>".utf8), context: "forms of page 1")
        #expect(error.httpStatus == 502)
        #expect(error.disposition == .retry)
        #expect(error.code == "graph.http_502")
    }

    @Test func theDescriptionCarriesNoSecret() {
        let error = GraphError(kind: .api, httpStatus: 400, apiCode: 190, subcode: 463,
                               message: "bad token in https://graph.facebook.com/v25.0/me?access_token=EAABsecret123", context: "me")
        #expect(!error.description.contains("EAABsecret123"))
        #expect(error.code == "graph.190.463")
    }
}

@Suite struct GraphUsageTests {
    @Test func theHighestPercentageAndTheWaitAreRead() {
        let response = HTTPResponse(status: 200, headers: [
            ("x-app-usage", #"{"call_count":12,"total_cputime":40,"total_time":33}"#),
            ("X-Business-Use-Case-Usage", #"{"1001":[{"type":"lead_retrieval","call_count":97,"total_cputime":5,"total_time":5,"estimated_time_to_regain_access":3}]}"#),
        ], body: Data())
        let usage = GraphUsage.from(response)
        #expect(usage.percent == 97)
        #expect(usage.regainAccessIn == .seconds(180))
    }

    @Test func missingOrBrokenHeadersMeanNoUsage() {
        let response = HTTPResponse(status: 200, headers: [("X-App-Usage", "not json")], body: Data())
        #expect(GraphUsage.from(response) == .none)
    }
}

@Suite struct LeadWindowTests {
    @Test func filteringIsStrictSoBoundsAreWidenedByASecond() throws {
        let from = try #require(UTCTime.parse("2026-11-01T00:00:00Z"))
        let to = try #require(UTCTime.parse("2026-11-02T00:00:00Z"))
        let window = LeadWindow(from: from, to: to)
        #expect(window.filtering == #"[{"field":"time_created","operator":"GREATER_THAN","value":1793491199},{"field":"time_created","operator":"LESS_THAN","value":1793577600}]"#)
        #expect(window.contains(from))
        #expect(!window.contains(to))
        #expect(LeadWindow(from: nil, to: to).filtering == #"[{"field":"time_created","operator":"LESS_THAN","value":1793577600}]"#)
    }

    @Test func backoffGrowsAndIsBounded() {
        let policy = RetryPolicy(maxAttempts: 6, baseDelay: .milliseconds(500), maxDelay: .seconds(4))
        #expect(policy.delay(afterFailedAttempts: 1, unit: 1) == .milliseconds(500))
        #expect(policy.delay(afterFailedAttempts: 3, unit: 1) == .seconds(2))
        #expect(policy.delay(afterFailedAttempts: 10, unit: 1) == .seconds(4))
        #expect(policy.delay(afterFailedAttempts: 3, unit: 0.5) == .seconds(1))
    }
}

/// Numbers Graph sends are read, never trusted to fit: a usage header with absurd values
/// paces or waits within bounds and does not trap.
@Suite struct GraphNumberClampTests {
    func response(_ headers: [(String, String)]) -> HTTPResponse {
        HTTPResponse(status: 200, headers: headers.map { (name: $0.0, value: $0.1) }, body: Data())
    }

    @Test func hugeNegativeAndNonNumericUsageValuesAreClamped() {
        let usage = GraphUsage.from(response([
            ("X-App-Usage", #"{"call_count":1e300,"total_cputime":-5,"total_time":"x"}"#),
            ("X-Business-Use-Case-Usage", #"{"1001":[{"type":"lead_retrieval","call_count":12,"estimated_time_to_regain_access":99999999999999999999}]}"#),
        ]))
        #expect(usage.appPercent == 1_000)
        #expect(usage.percent == 1_000)
        #expect(usage.regainAccessIn == .seconds(GraphUsage.longestRegainMinutes * 60), "a day at most, whatever Graph estimates")

        let negative = GraphUsage.from(response([
            ("X-Business-Use-Case-Usage", #"{"1001":[{"call_count":-3,"estimated_time_to_regain_access":-20}]}"#),
        ]))
        #expect(negative.percent == 0 && negative.regainAccessIn == nil)
    }

    @Test func aPagesUsageIsKeptApartFromTheAppsUsage() {
        let usage = GraphUsage.from(response([
            ("X-App-Usage", #"{"call_count":12,"total_cputime":3,"total_time":4}"#),
            ("X-Business-Use-Case-Usage", #"{"1001":[{"call_count":97,"estimated_time_to_regain_access":5}]}"#),
        ]))
        #expect(usage.percent == 97)
        #expect(usage.appPercent == 12)
        #expect(usage.appWide == GraphUsage(percent: 12, appPercent: 12, regainAccessIn: nil))
    }

    @Test func millisecondsOfAHugeDurationSaturateInsteadOfTrapping() {
        #expect(Duration.seconds(Int64.max).milliseconds == Int.max)
        #expect(Duration.seconds(Int64.min).milliseconds == Int.min)
        #expect(Duration.seconds(90).milliseconds == 90_000)
        #expect(Duration.milliseconds(-1_500).milliseconds == -1_500)
    }

    @Test func theRunsRateLimitBudgetRefusesTheWaitThatWouldPassIt() {
        let budget = RateLimitBudget(limit: .seconds(900))
        #expect(budget.take(.seconds(600)))
        #expect(!budget.isSpent)
        #expect(!budget.take(.seconds(600)), "600 + 600 > 900")
        #expect(budget.isSpent)
        #expect(!budget.take(.seconds(1)), "once refused, the run waits no more")
        let pages = RateLimitBudget(limit: .seconds(900))
        #expect(!pages.take(.seconds(1_800), appWide: false), "one Page's 30 minutes do not fit")
        #expect(!pages.isSpent, "another Page is still read")
        #expect(pages.take(.seconds(60)), "and may still wait")
        let none = RateLimitBudget(limit: .zero)
        #expect(!none.isSpent, "a budget of 0 still reads every connection; it only never waits")
        #expect(!none.take(.seconds(1)))
    }

    @Test func graphURLsMustBeHTTPSExceptOnLoopback() {
        #expect(GraphURLRule.problem("https://graph.facebook.com") == nil)
        #expect(GraphURLRule.problem("http://127.0.0.1:8080") == nil)
        #expect(GraphURLRule.problem("http://localhost:9") == nil)
        #expect(GraphURLRule.problem("http://[::1]:9") == nil)
        #expect(GraphURLRule.problem("http://graph.facebook.com")?.contains("https://") == true)
        #expect(GraphURLRule.problem("http://127.0.0.1.evil.example") != nil)
        #expect(GraphURLRule.problem("http://128.0.0.1") != nil)
        #expect(GraphURLRule.problem("ftp://graph.facebook.com") != nil)
        #expect(GraphURLRule.problem("graph.facebook.com") != nil)
    }

    @Test func headerValuesWithLineBreaksOrNULsAreRefused() {
        #expect(HTTPHeaderRule.isSafe(name: "Authorization", value: "Bearer EAAB\tx"))
        #expect(!HTTPHeaderRule.isSafe(name: "Authorization", value: "Bearer x\r\nX-Injected: 1"))
        #expect(!HTTPHeaderRule.isSafe(name: "Authorization", value: "Bearer x\n"))
        #expect(!HTTPHeaderRule.isSafe(name: "Authorization", value: "a\u{0}b"))
        #expect(!HTTPHeaderRule.isSafe(name: "Bad Name", value: "x"))
        #expect(!HTTPHeaderRule.isSafe(name: "X:Y", value: "x"))
        #expect(HTTPHeaderRule.printableName("X\r\nY") == "(an invalid name)")
    }
}

import LeadFlowCore
import Testing

@Suite struct URLQueryTests {
    @Test func encodesEverythingButUnreservedCharacters() {
        let filtering = #"[{"field":"time_created","operator":"GREATER_THAN","value":1764000000}]"#
        let encoded = URLQuery.encode([("filtering", filtering), ("q", "a b&c=d/é"), ("safe", "Az09-._~")])
        #expect(encoded == "filtering=%5B%7B%22field%22%3A%22time_created%22%2C%22operator%22%3A%22GREATER_THAN%22%2C%22value%22%3A1764000000%7D%5D"
            + "&q=a%20b%26c%3Dd%2F%C3%A9&safe=Az09-._~")
    }

    @Test func decodingInvertsEncoding() throws {
        let items = [("filtering", #"[{"a":1}]"#), ("name", "Zoë & Åsa"), ("empty", "")]
        let decoded = try #require(URLQuery.decode(Substring(URLQuery.encode(items))))
        #expect(decoded.map(\.name) == items.map(\.0))
        #expect(decoded.map(\.value) == items.map(\.1))
    }

    @Test func badEscapesAreRefused() {
        #expect(URLQuery.percentDecode("%G1") == nil)
        #expect(URLQuery.percentDecode("abc%2") == nil)
        #expect(URLQuery.percentDecode("%FF") == nil) // not UTF-8
        #expect(URLQuery.percentDecode("a+b") == "a b")
    }
}

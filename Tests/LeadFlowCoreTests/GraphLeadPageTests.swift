import Foundation
import LeadFlowCore
import Testing

/// The run's own Graph page parser: what `JSONDecoder` checked (grammar, UTF-8, nesting),
/// the leads as typed values, and each odd lead set apart with a reason while the rest of
/// its page goes on.
@Suite struct GraphLeadPageTests {
    func parse(_ text: String) throws -> GraphLeadPage { try GraphLeadPage.parse(Array(text.utf8)) }

    @Test func aPageAsGraphSendsItReadsLikeTheDecoderDid() throws {
        let text = #"""
            {"data":[{"id":"101","created_time":"2026-11-01T12:34:56+0000","field_data":[{"name":"email","values":["a@b.co"]},
              {"name":"Quel est votre budget ?","values":["10 000 €","20 000 €"]}],"ad_id":"6","form_id":"2001","is_organic":false,
              "platform":"fb","custom_disclaimer_responses":[{"checkbox_key":"opt_in","is_checked":"1"}],"unknown_key":{"x":[1,2.5e3,null,true]}},
             {"id":"102","created_time":"2026-11-01T12:35:00+0000","field_data":[],"is_organic":true}],
             "paging":{"cursors":{"before":"QQ","after":"Qg"},"next":"https://graph.facebook.com/v25.0/2001/leads?access_token=T&after=Qg"},
             "summary":{"total_count":2}}
            """#
        let page = try parse(text)
        let decoded = try JSONDecoder().decode(GraphList<GraphLead>.self, from: Data(text.utf8))
        #expect(page.leads == decoded.data)
        #expect(page.malformed.isEmpty)
        #expect(page.paging?.cursors?.after == "Qg")
        #expect(page.paging?.hasNext == true)
        #expect(try parse(#"{"data":[]}"#).paging == nil)
    }

    @Test func escapesSurrogatesAndNULAreDecoded() throws {
        let page = try parse(#"{"data":[{"id":"1","created_time":"t","field_data":[{"name":"q","values":["tab\there \"q\" \\ \/ \u00e9 \ud83d\ude00 \u0000 lone \udc00"]}]}]}"#)
        #expect(page.leads[0].fieldData[0].values[0] == "tab\there \"q\" \\ / é 😀 \u{0} lone \u{FFFD}")
    }

    @Test(arguments: [
        (#"{"data":[{"id":"7","field_data":[]}]}"#, "missing_created_time", "7"),
        (#"{"data":[{"created_time":"2026-11-01T00:00:00+0000","field_data":[]}]}"#, "missing_id", nil),
        (#"{"data":[{"id":12,"created_time":"t","field_data":[]}]}"#, "malformed_id", nil),
        (#"{"data":[{"id":"8","created_time":"t","field_data":{"name":"email"}}]}"#, "malformed_field_data", "8"),
        (#"{"data":[{"id":"9","created_time":"t","field_data":[{"name":"email","values":"x"}]}]}"#, "malformed_field_data", "9"),
        (#"{"data":[{"id":"10","created_time":"t","field_data":[],"is_organic":"yes"}]}"#, "malformed_is_organic", "10"),
        (#"{"data":["a lead?"]}"#, "malformed_lead", nil),
    ] as [(String, String, String?)])
    func aLeadOfTheWrongShapeIsSetApartWithItsReason(_ text: String, _ reason: String, _ id: String?) throws {
        let page = try parse(text)
        #expect(page.leads.isEmpty)
        #expect(page.malformed.map(\.reason) == [reason])
        #expect(page.malformed.first?.leadID == id)
        #expect(page.malformed.first?.raw.isEmpty == false, "its bytes, to hash for the rejection row")
    }

    @Test func theLeadsAroundAnOddOneAreKept() throws {
        let page = try parse(#"{"data":[{"id":"1","created_time":"t","field_data":[]},{"id":"2","field_data":5},{"id":"3","created_time":"t","field_data":[]}]}"#)
        #expect(page.leads.map(\.id) == ["1", "3"])
        #expect(page.malformed.map(\.leadID) == ["2"])
    }

    @Test(arguments: [
        "", "{", #"{"data":[{"id":"1""#, #"{"data":[1,]}"#, #"{"data":[] "x"}"#, #"{"paging":{}}"#, #"{"data":{}}"#,
        #"{"data":[{"id":"1","created_time":"t\u12"}]}"#, #"{"data":[{"id":"1","created_time":"t\q"}]}"#, "{\"data\":[\"\u{1}\"]}",
        #"{"data":[]} trailing"#, #"{"data":[-]}"#, #"{"data":[1.]}"#, #"{"data":[tru]}"#,
    ])
    func aBodyThatIsNoPageIsRefusedWhole(_ text: String) {
        #expect(throws: GraphLeadPage.SyntaxError.self) { try parse(text) }
    }

    @Test func invalidUTF8AndDeepNestingAreRefused() throws {
        var bytes = Array(#"{"data":[{"id":"1","created_time":"t","field_data":[{"name":"email","values":[""#.utf8)
        bytes += [0xC3, 0x28, 0xFF]
        bytes += Array(#""]}]}]}"#.utf8)
        #expect(throws: GraphLeadPage.SyntaxError.self) { try GraphLeadPage.parse(bytes) }
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/fuzz/graph-deep-nesting.json")
        #expect(throws: GraphLeadPage.SyntaxError.self) { try GraphLeadPage.parse(Array(try Data(contentsOf: fixture))) }
        let deep = #"{"data":[{"id":"1","created_time":"t","x":"# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}]}"
        #expect(throws: GraphLeadPage.SyntaxError.self) { try parse(deep) }
    }
}

import Foundation
import LeadFlowCore
import Testing

/// Regressions the fuzzer found, and the hostile shapes of the bad-input list: each is
/// refused with an error, never a crash.
@Suite struct GraphJSONTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/fuzz")

    @Test func deepNestingThatCrashedJSONDecoderIsRefused() throws {
        // 513 bytes of "[": Foundation's JSONDecoder trapped on it (scripts/fuzz.sh, seed 20261129).
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("graph-deep-nesting.json"))
        #expect(throws: GraphJSON.TooDeep.self) { try GraphJSON.decode(GraphList<GraphLead>.self, from: data) }
        let objects = Data((String(repeating: "{\"a\":", count: 5_000) + "1" + String(repeating: "}", count: 5_000)).utf8)
        #expect(throws: GraphJSON.TooDeep.self) { try GraphJSON.decode(GraphList<GraphLead>.self, from: objects) }
    }

    @Test func nestingIsCountedOutsideStringsOnly() {
        #expect(GraphJSON.nesting(of: Data(#"{"data":[{"field_data":[{"values":["[[[[{{{{"]}]}]}"#.utf8)) == 6)
        #expect(GraphJSON.nesting(of: Data(#"{"a":"\"[[[["}"#.utf8)) == 1)
    }

    @Test(arguments: [
        #"{"data":[{"id":12,"field_data":[]}]}"#,                              // an id of the wrong type
        #"{"data":[{"id":"1","field_data":{"name":"email"}}]}"#,               // field_data not a list
        #"{"data":[{"id":"1","field_data":[{"name":"email","values":"x"}]}]}"#, // values not a list
        #"{"data":"none"}"#,
        "{\"data\":[{\"id\":\"1\",\"created_time\":\"\u{FFFD}\"}]",             // truncated
    ])
    func wrongShapesAreErrorsNotCrashes(_ text: String) {
        #expect(throws: (any Error).self) { try GraphJSON.decode(GraphList<GraphLead>.self, from: Data(text.utf8)) }
    }

    @Test func invalidUTF8IsRefused() {
        var bytes = Array(#"{"data":[{"id":"1","field_data":[{"name":"email","values":[""#.utf8)
        bytes += [0xC3, 0x28, 0xFF]
        bytes += Array(#""]}]}]}"#.utf8)
        #expect(throws: (any Error).self) { try GraphJSON.decode(GraphList<GraphLead>.self, from: Data(bytes)) }
    }

    @Test func aPageWithALeadWithoutAnIdIsRefusedWhole() {
        // The form's window then fails (retried, then reported) and nothing of it is loaded.
        let page = #"{"data":[{"created_time":"2026-01-05T09:30:00+0000","field_data":[{"name":"email","values":["a@b.io"]}]}]}"#
        #expect(throws: DecodingError.self) { try GraphJSON.decode(GraphList<GraphLead>.self, from: Data(page.utf8)) }
    }

    @Test func aLeadWithABadIdOrWithHugeValuesIsRejectedNotLoaded() throws {
        let huge = String(repeating: "x", count: 1_000_000)
        let page = #"{"data":[{"id":"not-digits","created_time":"2026-01-05T09:30:00+0000","field_data":[{"name":"email","values":["a@b.io"]}]},"#
            + #"{"id":"7","created_time":"2026-01-05T09:30:00+0000","field_data":[{"name":"full_name","values":[""# + huge + #""]}]}]}"#
        let list = try GraphJSON.decode(GraphList<GraphLead>.self, from: Data(page.utf8))
        var pipeline = Pipeline(name: "t")
        pipeline.defaultSource = "s"
        let transformer = LeadTransformer(pipeline: pipeline)
        let context = LeadContext(instance: "i", connectionID: 1, pageID: "1", formID: "1", formName: nil)
        let outcomes = list.data.map { transformer.transform($0, context: context) }
        guard case .rejected(let noID) = outcomes[0], case .rejected(let noContact) = outcomes[1] else {
            Issue.record("both must be rejected: \(outcomes)")
            return
        }
        #expect(noID.reasons.contains("id_invalid"))
        #expect(noContact.reasons == ["no_contact"])
        // The reasons are codes: no value of the lead is repeated in them.
        #expect(!noContact.reasons.joined().contains("xxx"))
    }

    /// A 50 MB page (one lead with a 50 MB answer): decoded, and the lead loads with its
    /// answer or is rejected; nothing traps.
    @Test func aFiftyMegabytePageIsHandled() throws {
        let huge = String(repeating: "y", count: 50 * 1_048_576)
        let page = #"{"data":[{"id":"9","created_time":"2026-01-05T09:30:00+0000","field_data":[{"name":"email","values":["a@b.io"]},{"name":"notes","values":[""# + huge + #""]}]}]}"#
        let list = try GraphJSON.decode(GraphList<GraphLead>.self, from: Data(page.utf8))
        var pipeline = Pipeline(name: "t")
        pipeline.defaultSource = "s"
        let outcome = LeadTransformer(pipeline: pipeline).transform(list.data[0], context: LeadContext(instance: "i", connectionID: 1, pageID: "1", formID: "1", formName: nil))
        guard case .lead(let lead) = outcome else {
            Issue.record("expected a lead")
            return
        }
        #expect(lead.answers["notes"]?.first?.count == 50 * 1_048_576)
    }
}

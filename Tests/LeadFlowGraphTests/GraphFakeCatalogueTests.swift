import Foundation
import LeadFlowCore
@testable import LeadFlowGraphFake
import LeadFlowTestSupport
import Testing

/// The fake's embedded pieces held to their sources: the error envelopes to the real
/// payloads in `fixtures/graph/errors/`, the field lists to Meta's SDK, and the `fields`
/// parser to Graph's field-expansion syntax.
@Suite struct GraphFakeCatalogueTests {
    @Test func everyErrorFixtureIsServedAsRecorded() throws {
        let folder = Repository.fixture("graph/errors")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }
        #expect(files.count >= 19)
        for file in files {
            let name = String(file.dropLast(5))
            let recorded = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent(file))) as? [String: Any])
            let expected = try #require(recorded["error"] as? [String: Any], "\(file)")
            let answer = try #require(GraphErrors.catalogue[name], "the fake serves \(name)")
            let served = try #require(try JSONSerialization.jsonObject(with: answer.body()) as? [String: Any])
            let error = try #require(served["error"] as? [String: Any])
            #expect(error["message"] as? String == expected["message"] as? String, "\(name)")
            #expect(error["code"] as? Int == expected["code"] as? Int, "\(name)")
            #expect(error["error_subcode"] as? Int == expected["error_subcode"] as? Int, "\(name)")
            #expect(error["is_transient"] as? Bool == expected["is_transient"] as? Bool, "\(name)")
            if let type = expected["type"] as? String { #expect(error["type"] as? String == type, "\(name)") }
            #expect((error["fbtrace_id"] as? String)?.count == 11, "every envelope has a trace id")
        }
    }

    @Test func theExpiredSessionMessageIsGraphsOwnWording() {
        // Meta's example: "Session has expired on Wednesday, 14-Feb-18 18:00:00 PST. The current time is Thursday, 15-Feb-18 13:46:35 PST."
        let expiry = UTCTime.parse("2018-02-15T02:00:00Z")!
        let answer = GraphErrors.tokenExpired(at: expiry, now: UTCTime.parse("2018-02-15T21:46:35Z")!)
        #expect(answer.message == "Error validating access token: Session has expired on Wednesday, 14-Feb-18 18:00:00 PST. The current time is Thursday, 15-Feb-18 13:46:35 PST.")
        #expect(GraphErrors.pacific(UTCTime.parse("2021-07-29T17:00:00Z")!) == "Thursday, 29-Jul-21 10:00:00 PDT")
    }

    @Test func theFieldListsAreTheSDKs() {
        // facebook-business 25.0.1: LeadgenForm 23, Lead 19, HasLeadAccess 9, User 49, Page 153.
        #expect(LeadgenFormFields.all.count == 23 && Set(LeadgenFormFields.all).count == 23)
        #expect(LeadFields.all.count == 19 && Set(LeadFields.all).count == 19)
        #expect(HasLeadAccessFields.all.count == 9)
        #expect(UserFields.all.count == 49)
        #expect(PageFields.all.count == 153)
        #expect(Set(GraphFields.forms.split(separator: ",").map(String.init)).isSubset(of: Set(LeadgenFormFields.all)),
                "every form field LeadFlow asks for exists")
        #expect(Set(GraphFields.leads.split(separator: ",").map(String.init)).isSubset(of: Set(LeadFields.all)),
                "every lead field LeadFlow asks for exists")
    }

    @Test func fieldExpansionParsesModifiersAndNesting() throws {
        let parsed = try #require(FieldRequest.parseList(
            #"id,leadgen_forms.limit(100){id,name,leads.filtering([{"field":"time_created","operator":"GREATER_THAN","value":1}]).limit(5){id,field_data}},has_lead_access.user_id(42)"#))
        #expect(parsed.map(\.name) == ["id", "leadgen_forms", "has_lead_access"])
        #expect(parsed[1].modifiers == ["limit": "100"])
        let leads = try #require(parsed[1].subfields?.last)
        #expect(leads.name == "leads")
        #expect(leads.modifiers["filtering"] == #"[{"field":"time_created","operator":"GREATER_THAN","value":1}]"#)
        #expect(leads.modifiers["limit"] == "5")
        #expect(leads.subfields?.map(\.name) == ["id", "field_data"])
        #expect(parsed[2].modifiers == ["user_id": "42"])
        #expect(FieldRequest.parseList("id, name") != nil, "spaces after commas")
        for broken in ["", "id,", "a{b", "a.limit(1", "a.(1)", "a{}"] {
            #expect(FieldRequest.parseList(broken) == nil, "\(broken)")
        }
    }
}

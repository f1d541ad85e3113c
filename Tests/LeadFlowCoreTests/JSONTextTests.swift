import Foundation
import LeadFlowCore
import Testing

@Suite struct JSONTextTests {
    @Test func whatItWritesParsesBackToTheSameValues() throws {
        let answers = ["Quel est votre budget ?": ["10 000 €", "a \"quoted\" \\ value\n\t\u{01}"], "ご興味": []]
        let parsed = try JSONSerialization.jsonObject(with: Data(JSONText.object(answers).utf8)) as? [String: [String]]
        #expect(parsed == answers)
        let consents = ["optin": true, "calls": false]
        #expect(try JSONSerialization.jsonObject(with: Data(JSONText.object(consents).utf8)) as? [String: Bool] == consents)
        #expect(JSONText.object(consents) == #"{"calls":false,"optin":true}"#)
    }

    @Test func aLeadsCanonicalTextIsValidJSONAndStable() throws {
        let lead = GraphLead(id: "1", createdTime: "2026-11-01T00:00:00+0000", fieldData: [.init(name: "e\"mail", values: ["a@b.c"])],
                             adID: "9", isOrganic: false, customDisclaimerResponses: [.init(checkboxKey: "k", isChecked: "1")])
        let decoded = try JSONDecoder().decode(GraphLead.self, from: Data(lead.canonicalJSON.utf8))
        #expect(decoded == lead)
        #expect(lead.canonicalJSON == lead.canonicalJSON)
    }
}

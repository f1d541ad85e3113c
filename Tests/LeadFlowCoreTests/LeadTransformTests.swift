import Foundation
import LeadFlowCore
import Testing

@Suite struct LeadTransformTests {
    let context = LeadContext(instance: "acme", connectionID: 7, pageID: "1001", formID: "2001", formName: "Webinar")

    func transform(_ fields: [(String, [String])], id: String = "9001", created: String = "2026-11-01T12:34:56+0000",
                   pipeline: Pipeline = Pipeline(name: "t"), adID: String? = "61", isOrganic: Bool? = false,
                   consents: [GraphLead.Consent] = []) -> LeadTransformer.Outcome {
        let raw = GraphLead(id: id, createdTime: created, fieldData: fields.map { .init(name: $0.0, values: $0.1) },
                            adID: adID, adsetID: adID.map { $0 + "2" }, campaignID: adID.map { $0 + "3" }, isOrganic: isOrganic,
                            platform: "fb", customDisclaimerResponses: consents)
        return LeadTransformer(pipeline: pipeline).transform(raw, context: context)
    }

    func lead(_ outcome: LeadTransformer.Outcome) throws -> IntegrateLead {
        guard case .lead(let lead) = outcome else { throw Unexpected(outcome: "\(outcome)") }
        return lead
    }

    struct Unexpected: Error { let outcome: String }

    @Test func standardKeysFeedTheSchema() throws {
        let lead = try lead(transform([
            ("email", ["  Ann.Lee@Example.COM "]), ("full_name", ["Ann Marie Lee"]), ("phone_number", ["(415) 555-0100"]),
            ("country", ["United States"]), ("company_name", ["Acme"]), ("job_title", ["CMO"]), ("province", ["CA"]),
            ("city", ["SF"]), ("zip_code", ["94105"]),
        ]))
        #expect(lead.email == "ann.lee@example.com")
        #expect(lead.firstName == "Ann")
        #expect(lead.lastName == "Marie Lee")
        #expect(lead.phone == "+14155550100")
        #expect(lead.country == "US")
        #expect(lead.state == "CA")
        #expect(lead.postalCode == "94105")
        #expect(lead.createdAt == UTCTime.parse("2026-11-01T12:34:56Z"))
        #expect(lead.answers.isEmpty)
    }

    @Test func customQuestionsKeepTheirTextAsKey() throws {
        let lead = try lead(transform([("email", ["a@b.co"]), ("Quel est votre budget annuel ?", ["10 000 €"]),
                                       ("ご興味のある製品は？", ["CRM", "分析"])]))
        #expect(lead.answers == ["Quel est votre budget annuel ?": ["10 000 €"], "ご興味のある製品は？": ["CRM", "分析"]])
    }

    @Test(arguments: [("+33 6 12 34 56 78", "FR", "+33612345678"), ("06 12 34 56 78", "FR", "+33612345678"),
                      ("020 7946 0018", "GB", "+442079460018"), ("0044 20 7946 0018", nil, "+442079460018"),
                      ("555-0100 ext 7", nil, "555-0100 ext 7")] as [(String, String?, String)])
    func phonesBecomeE164WhereTheCountryAllows(given: String, country: String?, expected: String) {
        #expect(Phones.normalise(given, country: country) == expected)
    }

    @Test func consentsAreBooleansFromStrings() throws {
        let lead = try lead(transform([("email", ["a@b.co"])], consents: [.init(checkboxKey: "optin", isChecked: "1"),
                                                                        .init(checkboxKey: "terms", isChecked: "true"),
                                                                        .init(checkboxKey: "calls", isChecked: "0")]))
        #expect(lead.consents == ["optin": true, "terms": true, "calls": false])
    }

    @Test func organicLeadsCarryNoAd() throws {
        let lead = try lead(transform([("email", ["a@b.co"])], adID: nil, isOrganic: nil))
        #expect(lead.isOrganic)
        #expect(lead.adID == nil && lead.campaignID == nil)
    }

    @Test func aBadEmailWithAPhoneStillLoads() throws {
        let lead = try lead(transform([("email", ["not an address"]), ("phone_number", ["+1 415 555 0100"])]))
        #expect(lead.email == nil)
        #expect(lead.phone == "+14155550100")
    }

    @Test(arguments: [
        ([("email", ["nope"])], "9001", "2026-11-01T12:34:56+0000", ["email_invalid", "no_contact"]),
        ([("full_name", ["Ann Lee"])], "9001", "2026-11-01T12:34:56+0000", ["no_contact"]),
        ([("email", ["a@b.co"])], "", "2026-11-01T12:34:56+0000", ["id_invalid"]),
        ([("email", ["a@b.co"])], "9001", "yesterday", ["created_time_invalid"]),
    ] as [([(String, [String])], String, String, [String])])
    func unusableLeadsAreRejectedWithReasonsThatHoldNoData(fields: [(String, [String])], id: String, created: String, reasons: [String]) {
        guard case .rejected(let rejection) = transform(fields, id: id, created: created) else {
            Issue.record("expected a rejection")
            return
        }
        #expect(rejection.reasons == reasons)
        #expect(rejection.formID == "2001")
    }

    @Test func thePipelineMapsSourcesAndExtraKeys() throws {
        var pipeline = Pipeline(name: "t")
        pipeline.sources = [.init(match: .formName("web*"), source: "webinars")]
        pipeline.fieldMapping = ["Business e-mail": .email, "Secret": .ignore]
        let lead = try lead(transform([("Business e-mail", ["Boss@Corp.io"]), ("Secret", ["x"])], pipeline: pipeline))
        #expect(lead.email == "boss@corp.io")
        #expect(lead.sourceID == "webinars")
        #expect(lead.answers.isEmpty)
    }
}

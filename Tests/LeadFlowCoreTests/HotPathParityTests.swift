import Foundation
@testable import LeadFlowCore
import Testing

/// The per-lead hot path's hand-written pieces say exactly what the simple versions they
/// replaced said: the hash of a lead loaded before must not change, nor which e-mails pass.
@Suite struct HotPathParityTests {
    static let leads: [GraphLead] = [
        GraphLead(id: "1", createdTime: "2026-11-01T12:34:56+0000", fieldData: []),
        GraphLead(id: "2", createdTime: "2026-11-01T12:34:56+0000",
                  fieldData: [.init(name: "Quel est votre budget ?", values: ["10 000 €", "tab\there", "quote\" back\\slash", "\u{1}\u{1F}\u{7F}", "👩🏽‍💻"]),
                              .init(name: "empty", values: [])],
                  adID: "6", adName: "Ad \"one\"", adsetID: "7", adsetName: "Set", campaignID: "8", campaignName: "C", formID: "2001",
                  isOrganic: false, platform: "fb", customDisclaimerResponses: [.init(checkboxKey: "opt\nin", isChecked: "1")],
                  partnerName: "p"),
        GraphLead(id: "3", createdTime: "x", fieldData: [.init(name: "\u{2028}line", values: ["\r\n"])], isOrganic: true,
                  customDisclaimerResponses: []),
    ]

    @Test func canonicalBytesAreTheCanonicalText() {
        for lead in Self.leads {
            var bytes: [UInt8] = []
            lead.appendCanonicalJSON(to: &bytes)
            #expect(bytes == Array(lead.canonicalJSON.utf8), "\(lead.id)")
        }
    }

    @Test func trimmingIsFoundationsTrimming() {
        for text in ["", " ", "a", " a ", "\t\n a b \r\n", "\u{00A0}x\u{3000}", "\u{2028}y\u{2029}", "中 文", " 👩🏽‍💻 ", "\u{200B}z"] {
            #expect(Text.trimmed(text) == text.trimmingCharacters(in: .whitespacesAndNewlines), "\(Array(text.unicodeScalars))")
        }
    }

    @Test func anEmailIsWhatItWasBeforeAndTheTablesCheckAcceptsIt() throws {
        // The split-based check it replaced: local part, one @, a domain of non-empty labels.
        func before(_ text: String) -> Bool {
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !text.contains(where: \.isWhitespace) else { return false }
            let domain = parts[1].split(separator: ".", omittingEmptySubsequences: false)
            return domain.count >= 2 && domain.allSatisfy { !$0.isEmpty }
        }
        let check = try NSRegularExpression(pattern: #"^[^@\s]+@[^@\s]+\.[^@\s]+$"#)
        for text in ["a@b.co", "a@b", "@b.co", "a@@b.co", "a@b..co", "a@.b.co", "a@b.co.", "a b@c.de", "a@b.c@d.e", "é@ü.de",
                     "a@b.c.d", "x@y.z", "a.b@c.d", "a@b.c\u{00A0}", "first.last+tag@sub.example.com"] {
            #expect(LeadTransformer.isEmail(text) == before(text), "\(text)")
            if LeadTransformer.isEmail(text) {
                #expect(check.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil, "the leads.email check accepts \(text)")
            }
        }
    }
}

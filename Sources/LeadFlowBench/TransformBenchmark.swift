// The CPU side of the load stage alone: decode spooled pages, transform, hash.
import Crypto
import Foundation
import LeadFlowCore
import LeadFlowTestSupport

func runTransformBenchmark(leads count: Int) throws {
    let scenario = benchScenario(totalLeads: count, tokenPrefix: "x")
    let generated = scenario.pages.flatMap { $0.forms }.flatMap { $0.generate!.leads(formID: $0.id) }
    struct Page: Encodable { let data: [GraphLead] }
    let pages = try stride(from: 0, to: generated.count, by: 100).map { start in
        try JSONEncoder().encode(Page(data: Array(generated[start..<min(start + 100, generated.count)])))
    }
    var decoded: [GraphLead] = []
    let decode = try seconds {
        for page in pages { decoded += try JSONDecoder().decode(GraphList<GraphLead>.self, from: page).data }
    }
    let transformer = LeadTransformer(pipeline: Pipeline(name: "bench"))
    let context = LeadContext(instance: "i", connectionID: 1, pageID: "1", formID: "1", formName: "f")
    var kept = 0
    let transform = seconds {
        for lead in decoded { if case .lead = transformer.transform(lead, context: context) { kept += 1 } }
    }
    let hash = seconds {
        for lead in decoded { _ = SHA256.hash(data: Data(lead.canonicalJSON.utf8)) }
    }
    print(String(format: "%d leads: decode %.2f s, transform %.2f s, hash %.2f s (kept %d)", decoded.count, decode, transform, hash, kept))
}

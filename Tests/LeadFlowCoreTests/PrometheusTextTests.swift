import Foundation
import LeadFlowCore
import Testing

/// The text exposition format as Prometheus reads it: HELP, TYPE, samples, escapes.
@Suite struct PrometheusTextTests {
    @Test func rendersFamiliesInOrderWithEscapedLabelsAndHelp() {
        var text = PrometheusText()
        text.add("leadflow_leads_loaded_total", .counter, help: "Leads\nloaded \\ so far.",
                 [.init([.init("instance", "acme")], 300), .init([.init("instance", "odd \"name\"\\x\ny")], 2)])
        text.add("leadflow_last_run_duration_seconds", .gauge, help: "Seconds.", value: 1.5)
        text.add("leadflow_empty", .gauge, help: "No samples yet.", [])
        #expect(text.render() == """
            # HELP leadflow_leads_loaded_total Leads\\nloaded \\\\ so far.
            # TYPE leadflow_leads_loaded_total counter
            leadflow_leads_loaded_total{instance="acme"} 300
            leadflow_leads_loaded_total{instance="odd \\"name\\"\\\\x\\ny"} 2
            # HELP leadflow_last_run_duration_seconds Seconds.
            # TYPE leadflow_last_run_duration_seconds gauge
            leadflow_last_run_duration_seconds 1.5
            # HELP leadflow_empty No samples yet.
            # TYPE leadflow_empty gauge

            """)
    }

    @Test func numbersReadBackAsTheyWere() {
        #expect(PrometheusText.format(0) == "0")
        #expect(PrometheusText.format(1_795_132_800) == "1795132800")
        #expect(PrometheusText.format(-3) == "-3")
        #expect(PrometheusText.format(0.25) == "0.25")
        #expect(PrometheusText.format(.nan) == "NaN")
        #expect(PrometheusText.format(.infinity) == "+Inf")
        #expect(PrometheusText.format(-.infinity) == "-Inf")
        #expect(Double(PrometheusText.format(1e-7)) == 1e-7)
        #expect(Double(PrometheusText.format(1e300)) == 1e300)
    }

    @Test func labelValuesEscapeOnlyWhatTheFormatAsks() {
        #expect(PrometheusText.escapeLabelValue("plain-ñame/ü") == "plain-ñame/ü")
        #expect(PrometheusText.escapeLabelValue("a\\b\"c\nd") == "a\\\\b\\\"c\\nd")
    }
}

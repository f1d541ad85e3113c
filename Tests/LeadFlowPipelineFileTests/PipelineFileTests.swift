import Foundation
import LeadFlowCore
import LeadFlowPipelineFile
import LeadFlowTestSupport
import Testing

@Suite struct PipelineFileTests {
    @Test func theShippedExampleLoads() throws {
        let pipeline = try PipelineFile.load(Repository.root.appendingPathComponent("pipelines/facebook-leads.yml"))
        #expect(pipeline.name == "facebook-leads")
        #expect(pipeline.graph.pageSize == 100)
        #expect(pipeline.window.overlapMinutes == 10)
        #expect(pipeline.tokenPolicy == TokenPolicy(validityDays: 90, reminderDay: 75))
        #expect(pipeline.source(formID: "2001", formName: "Webinar", pageID: "1001") == "webinar-2026")
        #expect(pipeline.source(formID: "2009", formName: "Demande de démo", pageID: "1001") == "demo-requests-fr")
        #expect(pipeline.source(formID: "2010", formName: "Other", pageID: "1001") == "acme-facebook")
        #expect(pipeline.source(formID: "3000", formName: "Other", pageID: "9999") == "facebook-lead-ads")
        #expect(pipeline.fieldMapping["Business e-mail"] == .email)
    }

    /// The shipped file documents the notifications section in comments: uncommented, it is
    /// a valid section that says what its comments say.
    @Test func theDocumentedNotificationsSectionLoads() throws {
        let text = try String(contentsOf: Repository.root.appendingPathComponent("pipelines/facebook-leads.yml"), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        let start = try #require(lines.firstIndex(of: "# notifications:"))
        let section = lines[start...].map { $0.hasPrefix("# ") ? String($0.dropFirst(2)) : $0 }.joined(separator: "\n")
        let pipeline = try PipelineFile.parse(section, file: "p.yml")
        let notifications = pipeline.notifications
        #expect(notifications.webhookURL == "https://hooks.example.com/leadflow")
        #expect(notifications.webhookSecretEnv == "LEADFLOW_WEBHOOK_SECRET")
        #expect(notifications.webhookSecretFile == "/run/secrets/leadflow-webhook")
        #expect(notifications.smtpURL == "smtps://smtp.example.com:465")
        #expect(notifications.from?.value == "leadflow@example.com")
        #expect(notifications.startTLS == .auto)
        #expect(notifications.csmEmail["acme"]?.value == "csm@integrate.example")
        // As shipped (commented out), nothing is configured: nothing is sent.
        #expect(try PipelineFile.parse(text, file: "p.yml").notifications == NotificationConfiguration())
    }

    @Test func anEmptyFileMeansEveryDefault() throws {
        let pipeline = try PipelineFile.parse("version: 1\n", file: "p.yml")
        #expect(pipeline.graph.apiVersion == "v25.0")
        #expect(pipeline.automaticBackfill)
        #expect(pipeline.source(formID: "1", formName: "x", pageID: "2") == nil)
    }

    /// Each mistake, and exactly what the error says: file, line, key.
    @Test(arguments: [
        ("graph:\n  page_size: lots\n", "p.yml:2: graph.page_size: must be a whole number from 1 to 1000"),
        ("graph:\n  page_size: 0\n", "p.yml:2: graph.page_size: must be a whole number from 1 to 1000"),
        ("graph:\n  pagesize: 10\n", "p.yml:2: graph.pagesize: unknown key; expected one of api_version, base_url, concurrency, max_rate_limit_wait_seconds, page_concurrency, page_size, timeout_seconds"),
        ("colour: blue\n", "p.yml:1: colour: unknown key; expected one of archive, backfill, graph, mapping, notifications, token_policy, version, window, workers"),
        ("graph: [1, 2]\n", "p.yml:1: graph: must be a mapping of keys to values"),
        ("graph:\n  base_url: ftp://x\n", "p.yml:2: graph.base_url: must start with https:// or http://"),
        ("window:\n  start: yesterday\n", "p.yml:2: window.start: must be an ISO 8601 instant with a zone, e.g. 2026-01-01T00:00:00Z"),
        ("token_policy:\n  validity_days: 90\n  reminder_day: 95\n", "p.yml:3: token_policy.reminder_day: must come before validity_days (90)"),
        ("token_policy:\n  required_permissions: [pages_show_list]\n", "p.yml:2: token_policy.required_permissions: must include leads_retrieval: no lead can be read without it"),
        ("archive:\n  compression: rar\n", "p.yml:2: archive.compression: must be zstd, gzip or none"),
        ("backfill:\n  automatic: sometimes\n", "p.yml:2: backfill.automatic: must be true or false"),
        ("mapping:\n  sources:\n    - form_id: \"2001\"\n", "p.yml:3: mapping.sources[0].source: is missing: name the Integrate source this rule feeds"),
        ("mapping:\n  sources:\n    - form_id: \"2001\"\n      page_id: \"1\"\n      source: x\n", "p.yml:3: mapping.sources[0]: needs exactly one of form_id, form_name or page_id"),
        ("mapping:\n  sources:\n    - form_id: abc\n      source: x\n", "p.yml:3: mapping.sources[0].form_id: must be a form id (digits)"),
        ("mapping:\n  fields:\n    \"Your role\": position\n", "p.yml:3: mapping.fields.Your role: unknown schema field position; expected one of email, full_name, first_name, last_name, company, job_title, phone, country, state, city, postal_code, answers, ignore"),
        ("graph:\n  page_size: 10\n   concurrency: 2\n", "p.yml:3: is not valid YAML: mapping values are not allowed in this context"),
        ("", "p.yml:1: is empty"),
        ("notifications:\n  webhook:\n    url: hooks.example.com/leadflow\n", "p.yml:3: notifications.webhook.url: must be an http:// or https:// URL"),
        ("notifications:\n  webhook:\n    url: https:///leadflow\n", "p.yml:3: notifications.webhook.url: must name a host"),
        ("notifications:\n  webhook:\n    secret_env: \"s3cr3t value\"\n", "p.yml:3: notifications.webhook.secret_env: must name an environment variable (the secret itself never goes in this file)"),
        ("notifications:\n  email:\n    smtp_url: smtp://mailer:hunter2@smtp.example.com\n", "p.yml:3: notifications.email.smtp_url: must not hold credentials: set LEADFLOW_SMTP_USER and LEADFLOW_SMTP_PASSWORD (or LEADFLOW_SMTP_PASSWORD_FILE)"),
        ("notifications:\n  email:\n    smtp_url: http://smtp.example.com\n", "p.yml:3: notifications.email.smtp_url: must be an smtp:// or smtps:// URL"),
        ("notifications:\n  email:\n    from: LeadFlow\n", "p.yml:3: notifications.email.from: must be an e-mail address (name@domain)"),
        ("notifications:\n  email:\n    starttls: maybe\n", "p.yml:3: notifications.email.starttls: must be auto, required or off"),
        ("notifications:\n  instances:\n    acme:\n      csm_email: csm\n", "p.yml:4: notifications.instances.acme.csm_email: must be an e-mail address (name@domain)"),
        ("notifications:\n  instances:\n    acme:\n      csm: x@y.example\n", "p.yml:4: notifications.instances.acme.csm: unknown key; expected one of csm_email"),
        ("notifications:\n  slack: yes\n", "p.yml:2: notifications.slack: unknown key; expected one of email, instances, webhook"),
    ])
    func eachMistakeIsNamedWithFileLineAndKey(yaml: String, expected: String) {
        let error = #expect(throws: PipelineFileError.self) { try PipelineFile.parse(yaml, file: "p.yml") }
        #expect(error?.description == expected)
    }

    @Test func anUnreadableFileSaysSo() {
        let error = #expect(throws: PipelineFileError.self) { try PipelineFile.load(URL(fileURLWithPath: "/nonexistent/p.yml")) }
        #expect(error?.description.hasPrefix("/nonexistent/p.yml: cannot be read") == true)
    }
}

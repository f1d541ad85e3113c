import Foundation
import LeadFlowCore
import Yams

/// A pipeline file that cannot be used, said the way an editor jumps to it:
/// `pipelines/acme.yml:12: graph.page_size: must be a whole number from 1 to 1000`.
public struct PipelineFileError: LeadFlowError, Equatable {
    public let file: String
    /// 1-based; nil when the whole file is at fault (unreadable, not YAML at all).
    public let line: Int?
    /// The dotted path of the key, e.g. `mapping.sources[1].form_id`.
    public let key: String?
    public let message: String

    public var code: String { "pipeline.invalid" }
    public var disposition: Disposition { .fatal }
    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if let key { text += "\(key): " }
        return text + message
    }
}

/// Reads `pipelines/*.yml` into a `Pipeline`, refusing unknown keys, wrong types and
/// impossible values with the file, line and key named.
public enum PipelineFile {
    public static func load(_ url: URL) throws -> Pipeline {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw PipelineFileError(file: url.path, line: nil, key: nil, message: "cannot be read (\(error.localizedDescription))")
        }
        return try parse(text, file: url.path)
    }

    public static func parse(_ text: String, file: String) throws -> Pipeline {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw PipelineFileError(file: file, line: Self.line(of: error), key: nil, message: "is not valid YAML: \(Self.reason(of: error))")
        } catch {
            throw PipelineFileError(file: file, line: nil, key: nil, message: "is not valid YAML")
        }
        guard let root else { throw PipelineFileError(file: file, line: 1, key: nil, message: "is empty") }
        var reader = Reader(file: file)
        return try reader.pipeline(root, name: URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent)
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    private static func reason(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): return problem
        default: return "\(error)"
        }
    }
}

/// Walks the YAML tree with the key path at hand, so every error can name where it is.
private struct Reader {
    let file: String

    func fail(_ node: Node?, _ key: String, _ message: String) -> PipelineFileError {
        PipelineFileError(file: file, line: node?.mark?.line, key: key, message: message)
    }

    /// The mapping's entries, refusing keys not in `allowed`.
    func mapping(_ node: Node, _ key: String, allowed: Set<String>) throws -> [String: Node] {
        guard let mapping = node.mapping else { throw fail(node, key, "must be a mapping of keys to values") }
        var entries: [String: Node] = [:]
        for (name, value) in mapping {
            guard let text = name.string else { throw fail(name, key, "keys must be text") }
            let path = key.isEmpty ? text : "\(key).\(text)"
            guard allowed.contains(text) else {
                throw fail(name, path, "unknown key; expected one of \(allowed.sorted().joined(separator: ", "))")
            }
            entries[text] = value
        }
        return entries
    }

    func string(_ node: Node, _ key: String) throws -> String {
        guard case .scalar(let scalar) = node, node.null == nil || scalar.style != .plain else {
            throw fail(node, key, "must be text")
        }
        return scalar.string
    }

    func int(_ node: Node, _ key: String, in range: ClosedRange<Int>) throws -> Int {
        guard case .scalar = node, let value = node.int else { throw fail(node, key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)") }
        guard range.contains(value) else { throw fail(node, key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)") }
        return value
    }

    func bool(_ node: Node, _ key: String) throws -> Bool {
        guard case .scalar = node, let value = node.bool else { throw fail(node, key, "must be true or false") }
        return value
    }

    func strings(_ node: Node, _ key: String) throws -> [String] {
        guard let sequence = node.sequence else { throw fail(node, key, "must be a list") }
        return try sequence.enumerated().map { try string($1, "\(key)[\($0)]") }
    }

    mutating func pipeline(_ root: Node, name: String) throws -> Pipeline {
        var pipeline = Pipeline(name: name)
        let top = try mapping(root, "", allowed: ["version", "graph", "workers", "window", "token_policy", "archive", "backfill", "mapping",
                                                  "notifications"])
        if let version = top["version"] {
            guard try int(version, "version", in: 1...1) == 1 else { throw fail(version, "version", "must be 1") }
        }
        if let node = top["graph"] {
            let graph = try mapping(node, "graph", allowed: ["base_url", "api_version", "page_size", "concurrency", "page_concurrency", "timeout_seconds",
                                                                  "max_rate_limit_wait_seconds"])
            if let value = graph["base_url"] {
                let url = try string(value, "graph.base_url")
                guard url.hasPrefix("https://") || url.hasPrefix("http://") else { throw fail(value, "graph.base_url", "must start with https:// or http://") }
                pipeline.graph.baseURL = url
            }
            if let value = graph["api_version"] {
                let version = try string(value, "graph.api_version")
                guard version.range(of: #"^v[0-9]+\.[0-9]+$"#, options: .regularExpression) != nil else {
                    throw fail(value, "graph.api_version", "must look like v25.0")
                }
                pipeline.graph.apiVersion = version
            }
            if let value = graph["page_size"] { pipeline.graph.pageSize = try int(value, "graph.page_size", in: 1...1000) }
            if let value = graph["concurrency"] { pipeline.graph.concurrency = try int(value, "graph.concurrency", in: 1...64) }
            if let value = graph["page_concurrency"] { pipeline.graph.pageConcurrency = try int(value, "graph.page_concurrency", in: 1...64) }
            if let value = graph["timeout_seconds"] { pipeline.graph.timeoutSeconds = try int(value, "graph.timeout_seconds", in: 1...600) }
            if let value = graph["max_rate_limit_wait_seconds"] {
                pipeline.graph.maxRateLimitWaitSeconds = try int(value, "graph.max_rate_limit_wait_seconds", in: 0...86_400)
            }
        }
        if let node = top["workers"] {
            let workers = try mapping(node, "workers", allowed: ["connections_at_once", "lease_seconds", "pass_time_limit_minutes",
                                                                 "statement_timeout_seconds"])
            if let value = workers["connections_at_once"] {
                pipeline.workers.connectionsAtOnce = try int(value, "workers.connections_at_once", in: 1...64)
            }
            if let value = workers["lease_seconds"] { pipeline.workers.leaseSeconds = try int(value, "workers.lease_seconds", in: 5...86_400) }
            if let value = workers["pass_time_limit_minutes"] {
                pipeline.workers.passTimeLimitMinutes = try int(value, "workers.pass_time_limit_minutes", in: 1...10_080)
            }
            if let value = workers["statement_timeout_seconds"] {
                pipeline.workers.statementTimeoutSeconds = try int(value, "workers.statement_timeout_seconds", in: 1...86_400)
            }
        }
        if let node = top["window"] {
            let window = try mapping(node, "window", allowed: ["overlap_minutes", "start"])
            if let value = window["overlap_minutes"] { pipeline.window.overlapMinutes = try int(value, "window.overlap_minutes", in: 0...10_080) }
            if let value = window["start"], value.null == nil {
                guard let date = UTCTime.parse(try string(value, "window.start")) else {
                    throw fail(value, "window.start", "must be an ISO 8601 instant with a zone, e.g. 2026-01-01T00:00:00Z")
                }
                pipeline.window.start = date
            }
        }
        if let node = top["token_policy"] {
            let policy = try mapping(node, "token_policy", allowed: ["validity_days", "reminder_day", "required_permissions"])
            if let value = policy["validity_days"] { pipeline.validityDays = try int(value, "token_policy.validity_days", in: 1...365) }
            if let value = policy["reminder_day"] { pipeline.reminderDay = try int(value, "token_policy.reminder_day", in: 0...365) }
            if pipeline.reminderDay >= pipeline.validityDays {
                throw fail(policy["reminder_day"] ?? node, "token_policy.reminder_day", "must come before validity_days (\(pipeline.validityDays))")
            }
            if let value = policy["required_permissions"] {
                pipeline.requiredPermissions = try strings(value, "token_policy.required_permissions")
                guard pipeline.requiredPermissions.contains("leads_retrieval") else {
                    throw fail(value, "token_policy.required_permissions", "must include leads_retrieval: no lead can be read without it")
                }
            }
        }
        if let node = top["archive"] {
            let archive = try mapping(node, "archive", allowed: ["folder", "compression"])
            if let value = archive["folder"] { pipeline.archive.folder = try string(value, "archive.folder") }
            if let value = archive["compression"] {
                let compression = try string(value, "archive.compression")
                guard ["zstd", "gzip", "none"].contains(compression) else { throw fail(value, "archive.compression", "must be zstd, gzip or none") }
                pipeline.archive.compression = compression
            }
        }
        if let node = top["backfill"] {
            let backfill = try mapping(node, "backfill", allowed: ["automatic"])
            if let value = backfill["automatic"] { pipeline.automaticBackfill = try bool(value, "backfill.automatic") }
        }
        if let node = top["mapping"] {
            let mapping = try self.mapping(node, "mapping", allowed: ["sources", "default_source", "fields"])
            if let value = mapping["default_source"] { pipeline.defaultSource = try string(value, "mapping.default_source") }
            if let value = mapping["sources"] {
                guard let rules = value.sequence else { throw fail(value, "mapping.sources", "must be a list of rules") }
                for (index, ruleNode) in rules.enumerated() {
                    let path = "mapping.sources[\(index)]"
                    let rule = try self.mapping(ruleNode, path, allowed: ["form_id", "form_name", "page_id", "source"])
                    guard let sourceNode = rule["source"] else { throw fail(ruleNode, "\(path).source", "is missing: name the Integrate source this rule feeds") }
                    let source = try string(sourceNode, "\(path).source")
                    let matches = ["form_id", "form_name", "page_id"].filter { rule[$0] != nil }
                    guard matches.count == 1, let which = matches.first, let matchNode = rule[which] else {
                        throw fail(ruleNode, path, "needs exactly one of form_id, form_name or page_id")
                    }
                    let text = try string(matchNode, "\(path).\(which)")
                    switch which {
                    case "form_id":
                        guard text.allSatisfy(\.isNumber) else { throw fail(matchNode, "\(path).form_id", "must be a form id (digits)") }
                        pipeline.sources.append(.init(match: .formID(text), source: source))
                    case "page_id":
                        guard text.allSatisfy(\.isNumber) else { throw fail(matchNode, "\(path).page_id", "must be a Page id (digits)") }
                        pipeline.sources.append(.init(match: .pageID(text), source: source))
                    default:
                        pipeline.sources.append(.init(match: .formName(text), source: source))
                    }
                }
            }
            if let value = mapping["fields"] {
                guard let fields = value.mapping else { throw fail(value, "mapping.fields", "must map question keys to schema fields") }
                for (keyNode, fieldNode) in fields {
                    guard let question = keyNode.string else { throw fail(keyNode, "mapping.fields", "keys must be text") }
                    let path = "mapping.fields.\(question)"
                    let name = try string(fieldNode, path)
                    guard let field = LeadField(rawValue: name) else {
                        throw fail(fieldNode, path, "unknown schema field \(name); expected one of \(LeadField.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    pipeline.fieldMapping[question] = field
                }
            }
        }
        if let node = top["notifications"] { pipeline.notifications = try notifications(node) }
        return pipeline
    }

    /// `notifications:`: where events go. Secrets are never in the file, only where to find them.
    func notifications(_ node: Node) throws -> NotificationConfiguration {
        var configuration = NotificationConfiguration()
        let section = try mapping(node, "notifications", allowed: ["webhook", "email", "instances"])
        if let node = section["webhook"] {
            let webhook = try mapping(node, "notifications.webhook", allowed: ["url", "secret_env", "secret_file"])
            if let value = webhook["url"] {
                let url = try string(value, "notifications.webhook.url")
                if let problem = NotificationURLs.webhookProblem(url) { throw fail(value, "notifications.webhook.url", problem) }
                configuration.webhookURL = url
            }
            if let value = webhook["secret_env"] {
                let name = try string(value, "notifications.webhook.secret_env")
                guard name.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil else {
                    throw fail(value, "notifications.webhook.secret_env", "must name an environment variable (the secret itself never goes in this file)")
                }
                configuration.webhookSecretEnv = name
            }
            if let value = webhook["secret_file"] { configuration.webhookSecretFile = try string(value, "notifications.webhook.secret_file") }
        }
        if let node = section["email"] {
            let email = try mapping(node, "notifications.email", allowed: ["smtp_url", "from", "starttls"])
            if let value = email["smtp_url"] {
                let url = try string(value, "notifications.email.smtp_url")
                if let problem = NotificationURLs.smtpProblem(url) { throw fail(value, "notifications.email.smtp_url", problem) }
                configuration.smtpURL = url
            }
            if let value = email["from"] {
                guard let address = EmailAddress(try string(value, "notifications.email.from")) else {
                    throw fail(value, "notifications.email.from", "must be an e-mail address (name@domain)")
                }
                configuration.from = address
            }
            if let value = email["starttls"] {
                guard let mode = SMTPStartTLS(rawValue: try string(value, "notifications.email.starttls")) else {
                    throw fail(value, "notifications.email.starttls", "must be auto, required or off")
                }
                configuration.startTLS = mode
            }
        }
        if let node = section["instances"] {
            guard let instances = node.mapping else { throw fail(node, "notifications.instances", "must map instance names to their settings") }
            for (nameNode, settingsNode) in instances {
                guard let instance = nameNode.string else { throw fail(nameNode, "notifications.instances", "keys must be instance names") }
                let path = "notifications.instances.\(instance)"
                let settings = try mapping(settingsNode, path, allowed: ["csm_email"])
                if let value = settings["csm_email"] {
                    guard let address = EmailAddress(try string(value, "\(path).csm_email")) else {
                        throw fail(value, "\(path).csm_email", "must be an e-mail address (name@domain)")
                    }
                    configuration.csmEmail[instance] = address
                }
            }
        }
        return configuration
    }
}

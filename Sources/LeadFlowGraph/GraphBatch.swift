import Foundation
import LeadFlowCore

/// Graph's batch requests: up to 50 calls in one round trip, each answered on its own
/// (`GRAPH_API.md`, "Fewer round trips"; Meta's batch-requests guide). LeadFlow batches a
/// connection's opening reads (its forms, and each form's first page of leads) so that a
/// run that finds nothing new costs one round trip per connection, not one per form.
extension GraphClient {
    /// One call of a batch: a path under the API version, and its query.
    public struct BatchCall: Sendable {
        public let path: String
        public let query: [(name: String, value: String)]

        public init(path: String, query: [(name: String, value: String)]) {
            self.path = path
            self.query = query
        }
    }

    /// One call's answer; nil from Graph means the call timed out inside the batch.
    public struct BatchAnswer: Sendable {
        public let status: Int
        public let body: Data
    }

    /// At most 50 calls a batch.
    public static let batchLimit = 50

    /// POSTs the calls as one batch under `token` and returns each call's answer in order
    /// (nil where Graph gave none). Each call counts against the rate limits as if made
    /// alone: every answer's usage headers are recorded. A batch that fails as a whole
    /// throws; a call that fails alone is only its answer, for the caller to read again
    /// the ordinary way (which retries, halves or voids as that call's error says).
    public func batch(_ calls: [BatchCall], token: AccessToken, context: String) async throws -> [BatchAnswer?] {
        precondition(calls.count <= Self.batchLimit, "a Graph batch holds at most \(Self.batchLimit) calls")
        guard !calls.isEmpty else { return [] }
        let elements = calls.map { call -> [String: String] in
            let query = call.query.isEmpty ? "" : "?" + URLQuery.encode(call.query)
            return ["method": "GET", "relative_url": "\(configuration.apiVersion)/\(call.path)\(query)"]
        }
        let json = try JSONSerialization.data(withJSONObject: elements, options: [.withoutEscapingSlashes])
        // The batch's token is a top-level parameter (Meta's guide), sent in the body, where no
        // URL that a log or an error could quote carries it; calls without their own use it.
        var form: [(name: String, value: String)] = [("batch", String(decoding: json, as: UTF8.self)), ("include_headers", "true"),
                                                      ("access_token", token.secret)]
        if let secret = configuration.appSecret {
            form.append(("appsecret_proof", Self.appSecretProof(token: token, appSecret: secret)))
        }
        if let pause = await governor.pauseBeforeRequest(slowDownAbove: configuration.slowDownAbovePercent) {
            try await sleeper.sleep(for: pause)
        }
        var request = makeRequest(path: "", query: [], token: nil, limit: 0)
        request.method = .post
        request.body = Data(URLQuery.encode(form).utf8)
        request.headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        GraphTally.request()
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch let error as any LeadFlowError {
            GraphTally.error(error.code)
            throw error
        }
        guard (200..<300).contains(response.status) else {
            let error = GraphError.from(status: response.status, body: response.body, context: context)
            GraphTally.error(error.code)
            throw error
        }
        guard GraphJSON.nesting(of: response.body) <= GraphJSON.maximumDepth,
              let answers = try? JSONSerialization.jsonObject(with: response.body) as? [Any], answers.count == calls.count else {
            throw GraphError(kind: .malformed, httpStatus: response.status, message: "the batch answer is not one answer per call",
                             context: context)
        }
        var results: [BatchAnswer?] = []
        for answer in answers {
            guard let object = answer as? [String: Any], let code = (object["code"] as? NSNumber)?.intValue,
                  let text = object["body"] as? String else {
                results.append(nil)
                continue
            }
            let headers = (object["headers"] as? [[String: Any]] ?? []).compactMap { header -> (name: String, value: String)? in
                guard let name = header["name"] as? String, let value = header["value"] as? String else { return nil }
                return (name, value)
            }
            await governor.record(GraphUsage.from(HTTPResponse(status: code, headers: headers, body: Data())))
            results.append(BatchAnswer(status: code, body: Data(text.utf8)))
        }
        logger.debug("graph batch", metadata: ["graph.context": "\(context)", "graph.calls": "\(calls.count)",
                                               "graph.ok": "\(results.filter { $0?.status == 200 }.count)"])
        return results
    }

    /// The call that lists a Page's forms (its first page).
    public func formsCall(pageID: String) -> BatchCall {
        BatchCall(path: "\(pageID)/leadgen_forms", query: [("fields", GraphFields.forms), ("limit", String(configuration.pageSize))])
    }

    /// The call that reads the first page of a form's leads in a window.
    public func leadsCall(formID: String, window: LeadWindow) -> BatchCall {
        BatchCall(path: "\(formID)/leads", query: [("fields", GraphFields.leads), ("filtering", window.filtering),
                                                   ("limit", String(configuration.pageSize))])
    }
}

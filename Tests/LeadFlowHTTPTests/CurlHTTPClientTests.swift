import Foundation
import LeadFlowCore
import LeadFlowHTTP
import LeadFlowTestSupport
import Testing

@Suite struct CurlHTTPClientTests {
    @Test func statusHeadersAndBodyArrive() async throws {
        let server = try LoopbackHTTPServer { request in
            .json(#"{"path":"\#(request.path)"}"#, status: 201,
                  headers: [("X-App-Usage", #"{"call_count":28,"total_cputime":5,"total_time":7}"#), ("X-Other", "a"), ("X-Other", "b")])
        }
        let client = try CurlHTTPClient()
        let response = try await client.send(HTTPRequest(url: server.baseURL + "/v25.0/me"))
        #expect(response.status == 201)
        #expect(response.header("x-app-usage") == #"{"call_count":28,"total_cputime":5,"total_time":7}"#)
        #expect(response.headers.filter { $0.name == "X-Other" }.map(\.value) == ["a", "b"])
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"path":"/v25.0/me"}"#)
    }

    /// A header value with a line break would inject a header of its own: the request is
    /// refused before it is sent, and the server sees nothing.
    @Test func aHeaderWithALineBreakIsRefusedAndNothingIsSent() async throws {
        let seen = Counter()
        let server = try LoopbackHTTPServer { _ in
            seen.increment()
            return .json("{}")
        }
        let client = try CurlHTTPClient()
        for value in ["Bearer x\r\nX-Injected: 1", "Bearer x\n", "Bearer x\u{0}y"] {
            let error = await #expect(throws: CurlError.self) {
                try await client.send(HTTPRequest(url: server.baseURL + "/v25.0/me", headers: [("Authorization", value)]))
            }
            #expect(error?.kind == .setup)
            #expect(error?.description.contains("Bearer") == false, "the value is never quoted: \(error?.description ?? "")")
        }
        _ = try await client.send(HTTPRequest(url: server.baseURL + "/v25.0/me", headers: [("Authorization", "Bearer fine")]))
        #expect(seen.value == 1, "only the well-formed request reached the server")
    }

    @Test func queryParametersArriveIntact() async throws {
        let server = try LoopbackHTTPServer { request in
            .json(request.query.map { "\($0.name)=\($0.value)" }.joined(separator: "\n"))
        }
        let filtering = #"[{"field":"time_created","operator":"LESS_THAN","value":1764000000}]"#
        let client = try CurlHTTPClient()
        let response = try await client.send(HTTPRequest(url: server.baseURL + "/leads",
                                                         query: [("filtering", filtering), ("q", "Zoë & co=1"), ("limit", "100")]))
        #expect(String(decoding: response.body, as: UTF8.self) == "filtering=\(filtering)\nq=Zoë & co=1\nlimit=100")
    }

    @Test func slowServerTimesOutAsRetryable() async throws {
        let server = try LoopbackHTTPServer { _ in .init(body: Data("late".utf8), delay: .seconds(3)) }
        let client = try CurlHTTPClient()
        // A timeout error (not the late body) proves curl gave up before the server answered.
        let error = await #expect(throws: CurlError.self) {
            try await client.send(HTTPRequest(url: server.baseURL + "/slow", timeout: .milliseconds(300)))
        }
        #expect(error?.kind == .timedOut)
        #expect(error?.disposition == .retry)
    }

    @Test func refusedConnectionIsRetryableAndRedacted() async throws {
        let server = try LoopbackHTTPServer { _ in .json("{}") }
        let deadURL = server.baseURL
        server.stop()
        let client = try CurlHTTPClient()
        let error = await #expect(throws: CurlError.self) {
            try await client.send(HTTPRequest(url: deadURL + "/me", query: [("access_token", "EAAsecretTOKEN123")]))
        }
        #expect(error?.kind == .connectFailed)
        #expect(error?.disposition == .retry)
        #expect(error.map { !$0.description.contains("EAAsecretTOKEN123") } == true)
        #expect(error?.url?.hasSuffix("/me") == true, "the secret parameter is gone, name and all")
    }

    @Test func truncatedBodyIsAnErrorNotAShortBody() async throws {
        let server = try LoopbackHTTPServer { _ in
            .init(body: Data(#"{"data":[{"id":"1"},{"id":"2"}]}"#.utf8), truncateBodyAfter: 12)
        }
        let client = try CurlHTTPClient()
        let error = await #expect(throws: CurlError.self) {
            try await client.send(HTTPRequest(url: server.baseURL + "/leads"))
        }
        #expect(error?.kind == .truncated)
        #expect(error?.disposition == .retry)
    }

    @Test func gzipBodiesAreAskedForAndDecoded() async throws {
        let text = String(repeating: #"{"id":"123","field_data":[]},"#, count: 200)
        let compressed = try await gzip(Data(text.utf8))
        let server = try LoopbackHTTPServer { request in
            guard request.header("Accept-Encoding")?.contains("gzip") == true else { return .init(status: 400) }
            return .init(headers: [("Content-Encoding", "gzip")], body: compressed)
        }
        let client = try CurlHTTPClient()
        let response = try await client.send(HTTPRequest(url: server.baseURL + "/gz"))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == text)
        #expect(compressed.count < text.utf8.count / 5)
    }

    @Test func fiftyConcurrentTransfersThroughTheMultiInterface() async throws {
        let server = try LoopbackHTTPServer { request in
            .init(body: Data("body of \(request.path)".utf8), delay: .milliseconds(50))
        }
        let client = try CurlHTTPClient(configuration: .init(maxConcurrentTransfers: 10))
        let bodies = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for index in 0..<50 {
                group.addTask {
                    let response = try await client.send(HTTPRequest(url: server.baseURL + "/item/\(index)"))
                    return (index, String(decoding: response.body, as: UTF8.self))
                }
            }
            return try await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
        }
        #expect(bodies.count == 50)
        #expect((0..<50).allSatisfy { bodies[$0] == "body of /item/\($0)" })
        // Overlapped, within the bound, and over kept-alive connections.
        #expect(server.peakConcurrentRequests > 1)
        #expect(server.peakConcurrentRequests <= 10)
        #expect(server.connectionsAccepted <= 10)
        #expect(server.requestsServed == 50)
    }

    @Test func keepAliveReusesOneConnectionForSequentialRequests() async throws {
        let server = try LoopbackHTTPServer { _ in .json("{}") }
        let client = try CurlHTTPClient()
        for _ in 0..<20 { _ = try await client.send(HTTPRequest(url: server.baseURL + "/me")) }
        #expect(server.requestsServed == 20)
        #expect(server.connectionsAccepted == 1)
    }

    @Test func oversizedResponseIsRefused() async throws {
        let server = try LoopbackHTTPServer { _ in .init(body: Data(count: 200_000)) }
        let client = try CurlHTTPClient(configuration: .init(maxResponseBytes: 100_000))
        let error = await #expect(throws: CurlError.self) {
            try await client.send(HTTPRequest(url: server.baseURL + "/big"))
        }
        #expect(error?.kind == .responseTooLarge)
    }

    @Test func cancellingTheTaskCancelsTheTransfer() async throws {
        let server = try LoopbackHTTPServer { _ in .init(delay: .seconds(5)) }
        let client = try CurlHTTPClient()
        let task = Task { try await client.send(HTTPRequest(url: server.baseURL + "/slow")) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        // The server would answer 200 after 5 s: a CancellationError means the transfer was cut.
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test func postSendsItsBody() async throws {
        let server = try LoopbackHTTPServer { request in
            .init(body: Data("\(request.method) \(String(decoding: request.body, as: UTF8.self))".utf8))
        }
        let client = try CurlHTTPClient()
        let response = try await client.send(HTTPRequest(method: .post, url: server.baseURL + "/", body: Data("batch=[]".utf8)))
        #expect(String(decoding: response.body, as: UTF8.self) == "POST batch=[]")
    }

    private func gzip(_ data: Data) async throws -> Data {
        let folder = try Repository.temporaryFolder("gzip")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("body")
        try data.write(to: file)
        let result = try await runProgram("gzip", ["-9", file.path])
        #expect(result.status == 0)
        return try Data(contentsOf: folder.appendingPathComponent("body.gz"))
    }
}

/// Counts calls from the server's thread.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}

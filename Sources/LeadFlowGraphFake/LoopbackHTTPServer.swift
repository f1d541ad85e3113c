import Foundation
import LeadFlowCore
#if canImport(Glibc)
import Glibc
#endif

/// A small real HTTP/1.1 server on 127.0.0.1 (a free port), for tests and the Graph fake.
///
/// Blocking sockets, one thread per connection, keep-alive honoured. Handlers can delay a
/// response or cut its body short, which is how tests provoke timeouts and truncated
/// bodies that a higher-level server library would not let us produce.
public final class LoopbackHTTPServer: @unchecked Sendable {
    public typealias Request = ServerCore.Request
    public typealias Response = ServerCore.Response
    public typealias Handler = ServerCore.Handler

    private let core: ServerCore

    public init(handler: @escaping Handler) throws {
        core = try ServerCore(handler: handler)
    }

    /// Stops the server when the last reference goes: its threads hold only the core.
    deinit { core.stop() }

    public var port: Int { core.port }
    public var baseURL: String { core.baseURL }
    /// Connections accepted so far (keep-alive reuse shows as fewer connections than requests).
    public var connectionsAccepted: Int { core.connectionsAccepted }
    /// Requests answered so far.
    public var requestsServed: Int { core.requestsServed }
    /// The most requests being handled at the same moment.
    public var peakConcurrentRequests: Int { core.peakConcurrentRequests }
    /// Closes the listener and every open connection.
    public func stop() { core.stop() }
}

/// The server itself; its threads keep it alive until `stop()`.
public final class ServerCore: @unchecked Sendable {
    public struct Request: Sendable {
        public let method: String
        /// The path without the query: `/v25.0/me`.
        public let path: String
        /// The decoded query parameters, in order.
        public let query: [(name: String, value: String)]
        public let headers: [(name: String, value: String)]
        public let body: Data

        public func queryValue(_ name: String) -> String? { query.first { $0.name == name }?.value }
        public func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: Data
        /// Wait this long before answering (latency, or a timeout for the client).
        public var delay: Duration?
        /// Send only this many body bytes (the full Content-Length is still announced), then close.
        public var truncateBodyAfter: Int?

        public init(status: Int = 200, headers: [(name: String, value: String)] = [], body: Data = Data(),
                    delay: Duration? = nil, truncateBodyAfter: Int? = nil) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
            self.truncateBodyAfter = truncateBodyAfter
        }

        public static func json(_ text: String, status: Int = 200, headers: [(name: String, value: String)] = []) -> Response {
            Response(status: status, headers: [("Content-Type", "application/json; charset=UTF-8")] + headers, body: Data(text.utf8))
        }
    }

    public typealias Handler = @Sendable (Request) -> Response

    public let port: Int
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    private let listener: Int32
    private let handler: Handler
    private let lock = NSLock()
    // Guarded by `lock`.
    private var clients: Set<Int32> = []
    private var stopped = false
    private var accepted = 0
    private var inFlight = 0
    private var peakInFlight = 0
    private var served = 0

    public init(handler: @escaping Handler) throws {
        self.handler = handler
        (listener, port) = try Self.listen()
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "loopback-http.accept"
        thread.start()
    }

    /// Connections accepted so far (keep-alive reuse shows as fewer connections than requests).
    public var connectionsAccepted: Int { lock.withLock { accepted } }
    /// Requests answered so far.
    public var requestsServed: Int { lock.withLock { served } }
    /// The most requests being handled at the same moment.
    public var peakConcurrentRequests: Int { lock.withLock { peakInFlight } }

    /// Closes the listener and every open connection.
    public func stop() {
        // Shut sockets down under the lock, and let their own threads close them: a socket
        // closed here could be reused by another test's connection before a late shutdown.
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            for client in clients { shutdown(client, Int32(SHUT_RDWR)) }
        }
    }

    /// Binds a listening socket to 127.0.0.1 on a port the kernel picks.
    private static func listen() throws -> (Int32, Int) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw ServerError("socket", errno) }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(listener, 128) == 0 else {
            let code = errno
            close(listener)
            throw ServerError("bind/listen", code)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        return (listener, Int(UInt16(bigEndian: address.sin_port)))
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                close(listener)
                return
            }
            let keep = lock.withLock { () -> Bool in
                guard !stopped else { return false }
                clients.insert(client)
                accepted += 1
                return true
            }
            guard keep else {
                close(client)
                close(listener)
                return
            }
            // Answers go out in one piece or in several sends; without NODELAY, Nagle holds
            // the tail of a large answer until the client's delayed ACK (40 ms a request).
            var yes: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
            let thread = Thread { [self] in serve(client) }
            thread.name = "loopback-http.connection"
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        defer {
            lock.withLock {
                clients.remove(client)
                close(client)
            }
        }
        var buffer = [UInt8]()
        while let request = readRequest(client, &buffer) {
            lock.withLock { inFlight += 1; peakInFlight = max(peakInFlight, inFlight) }
            let response = handler(request)
            if let delay = response.delay { Thread.sleep(forTimeInterval: delay.timeInterval) }
            lock.withLock { inFlight -= 1; served += 1 }
            guard write(response, to: client) else { return }
            if request.header("Connection")?.lowercased() == "close" || response.truncateBodyAfter != nil { return }
        }
    }

    private func readRequest(_ client: Int32, _ buffer: inout [UInt8]) -> Request? {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            if let range = buffer.firstRange(of: separator) { headerEnd = range.lowerBound; break }
            guard receive(client, &buffer) else { return nil }
        }
        let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        let headers: [(name: String, value: String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let length = headers.first { $0.name.lowercased() == "content-length" }.flatMap { Int($0.value) } ?? 0
        let bodyStart = headerEnd! + 4
        while buffer.count < bodyStart + length {
            guard receive(client, &buffer) else { return nil }
        }
        let body = Data(buffer[bodyStart..<(bodyStart + length)])
        buffer.removeFirst(bodyStart + length)
        let target = requestLine[1]
        let pathEnd = target.firstIndex(of: "?") ?? target.endIndex
        let query = pathEnd < target.endIndex ? URLQuery.decode(target[target.index(after: pathEnd)...]) ?? [] : []
        return Request(method: String(requestLine[0]), path: String(target[..<pathEnd]), query: query, headers: headers, body: body)
    }

    private func receive(_ client: Int32, _ buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return false }
        buffer.append(contentsOf: chunk[0..<count])
        return true
    }

    private func write(_ response: Response, to client: Int32) -> Bool {
        var head = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
        for header in response.headers { head += "\(header.name): \(header.value)\r\n" }
        head += "Content-Length: \(response.body.count)\r\n"
        if response.truncateBodyAfter != nil { head += "Connection: close\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        bytes += response.body.prefix(response.truncateBodyAfter ?? response.body.count)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    private static func reason(_ status: Int) -> String {
        [200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
         503: "Service Unavailable"][status] ?? "Status"
    }

    struct ServerError: Error, CustomStringConvertible {
        let description: String
        init(_ call: String, _ code: Int32) { description = "\(call) failed: \(String(cString: strerror(code)))" }
    }
}

import Foundation

/// One HTTP request, described without any transport.
public struct HTTPRequest: Sendable, Equatable {
    public enum Method: String, Sendable { case get = "GET", post = "POST", put = "PUT" }

    public var method: Method
    /// Scheme, host, port and path, without a query string: `http://127.0.0.1:8080/v25.0/me`.
    public var url: String
    /// Query parameters in order; encoded by `URLQuery.encode`.
    public var query: [(name: String, value: String)]
    public var headers: [(name: String, value: String)]
    public var body: Data?
    /// Time allowed to establish the connection.
    public var connectTimeout: Duration
    /// Time allowed for the whole exchange, connection included.
    public var timeout: Duration

    public init(method: Method = .get,
                url: String,
                query: [(name: String, value: String)] = [],
                headers: [(name: String, value: String)] = [],
                body: Data? = nil,
                connectTimeout: Duration = .seconds(10),
                timeout: Duration = .seconds(60)) {
        self.method = method
        self.url = url
        self.query = query
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
    }

    /// The full URL with its encoded query. May hold secrets: pass it through
    /// `URLRedaction.redact` before it reaches a log, an error or an archive.
    public var fullURL: String {
        query.isEmpty ? url : url + "?" + URLQuery.encode(query)
    }

    public static func == (lhs: HTTPRequest, rhs: HTTPRequest) -> Bool {
        lhs.method == rhs.method && lhs.url == rhs.url
            && lhs.query.elementsEqual(rhs.query, by: { $0 == $1 })
            && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 })
            && lhs.body == rhs.body && lhs.connectTimeout == rhs.connectTimeout && lhs.timeout == rhs.timeout
    }
}

/// What came back: status, every header as sent (the Graph usage headers matter), body.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: Data
    /// The transport's accounting of the body's bytes (see `CurlHTTPClient`'s buffer
    /// budget): while this lives, the bytes count against it. Keep it until the body has
    /// been dealt with; nil from transports that do not account.
    public var bodyLease: (any AnyObject & Sendable)?

    public init(status: Int, headers: [(name: String, value: String)], body: Data, bodyLease: (any AnyObject & Sendable)? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyLease = bodyLease
    }

    /// The first header of that name, compared case-insensitively as HTTP requires.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    public static func == (lhs: HTTPResponse, rhs: HTTPResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body
            && lhs.headers.elementsEqual(rhs.headers, by: { $0 == $1 })
    }
}

/// Anything that can carry an `HTTPRequest`: libcurl in production, a double in unit tests.
/// Implementations allow many `send` calls in flight at once.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// What a request header may hold (RFC 9110 §5.1, §5.5): a name of token characters, a
/// value without CR, LF, NUL or other control characters but tab. Anything else could end
/// the header early and inject another.
public enum HTTPHeaderRule {
    public static func isSafe(name: String, value: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(isTokenByte) && value.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }

    /// The name as it may be shown: a refused name is replaced by a placeholder.
    public static func printableName(_ name: String) -> String {
        !name.isEmpty && name.utf8.allSatisfy(isTokenByte) ? name : "(an invalid name)"
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

import Foundation
import LeadFlowCore
#if canImport(Glibc)
import Glibc
#endif

/// Where a run's metrics go: a file for node_exporter's textfile collector, written whole
/// or not at all, and a Pushgateway, over the core's `HTTPTransport` (libcurl).
public struct MetricsPublisher: Sendable {
    let transport: (any HTTPTransport)?

    public init(transport: (any HTTPTransport)?) {
        self.transport = transport
    }

    /// Writes `text` to `path` atomically: a temporary file beside it (a name the collector
    /// ignores, as it reads only `*.prom`), flushed to disk, then renamed over the old one,
    /// so the collector never reads half a file. Mode 0644: the collector runs as another
    /// user, and the metrics hold no secret and no personal data (counts, instance names,
    /// error codes).
    public func write(_ text: String, to path: URL) throws {
        let folder = path.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(path.lastPathComponent).\(getpid()).tmp")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw MetricsFileError(path: path.path, step: "create \(temporary.lastPathComponent)", errno: errno) }
        var failure: MetricsFileError?
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count, failure == nil {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno != EINTR { failure = MetricsFileError(path: path.path, step: "write", errno: errno) }
            } else {
                written += count
            }
        }
        // The mode is set again: the process umask may have taken bits off at open.
        if failure == nil, fchmod(descriptor, 0o644) != 0 { failure = MetricsFileError(path: path.path, step: "chmod", errno: errno) }
        if failure == nil, fsync(descriptor) != 0 { failure = MetricsFileError(path: path.path, step: "fsync", errno: errno) }
        close(descriptor)
        if failure == nil, rename(temporary.path, path.path) != 0 { failure = MetricsFileError(path: path.path, step: "rename", errno: errno) }
        if let failure {
            unlink(temporary.path)
            throw failure
        }
    }

    /// PUTs `text` to `<gateway>/metrics/job/<job>` plus the grouping labels: the group's
    /// metrics are replaced whole, as a batch job's last run should be. Label values are
    /// base64url-encoded in the path (`name@base64/value`), so any character is safe.
    public func push(_ text: String, to gateway: String, job: String, grouping: [(name: String, value: String)]) async throws {
        guard let transport else { throw PushFailed(gateway: Self.hostOf(gateway), detail: "no HTTP client") }
        var url = (gateway.hasSuffix("/") ? String(gateway.dropLast()) : gateway) + "/metrics/job/" + job
        for (name, value) in grouping {
            url += "/\(name)@base64/" + Data(value.utf8).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        }
        let request = HTTPRequest(method: .put, url: url, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                                  body: Data(text.utf8), connectTimeout: .seconds(5), timeout: .seconds(30))
        let response: HTTPResponse
        do {
            response = try await transport.send(request)
        } catch {
            throw PushFailed(gateway: Self.hostOf(gateway), detail: (error as? any LeadFlowError)?.code ?? "transfer failed")
        }
        guard (200..<300).contains(response.status) else {
            throw PushFailed(gateway: Self.hostOf(gateway), detail: "HTTP \(response.status)")
        }
    }

    /// Scheme, host and port only: a gateway URL may carry a login, and its path is nobody's business in a log.
    static func hostOf(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return "the Pushgateway" }
        var rest = url[scheme.upperBound...]
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        return String(url[..<scheme.upperBound]) + rest
    }
}

/// The metrics file could not be written; nothing was left half-written.
public struct MetricsFileError: LeadFlowError {
    public let path: String
    public let step: String
    public let errno: Int32
    public var code: String { "metrics.file" }
    public var disposition: Disposition { .fatal }
    public var description: String { "\(code): could not write \(path) (\(step): \(String(cString: strerror(errno))))" }
}

/// The Pushgateway did not take the metrics.
public struct PushFailed: LeadFlowError {
    public let gateway: String
    public let detail: String
    public var code: String { "metrics.push" }
    public var disposition: Disposition { .retry }
    public var description: String { "\(code): \(gateway) did not take the metrics (\(detail))" }
}

import CCurl
import LeadFlowCore

/// A libcurl failure, naming the C function and the (redacted) URL it was working on.
public struct CurlError: LeadFlowError, Equatable {
    public enum Kind: String, Sendable {
        case initialisation, setup, timedOut = "timeout", connectFailed = "connect_failed",
             truncated, transfer, responseTooLarge = "response_too_large", cancelled
    }

    public let kind: Kind
    /// The C function that reported the failure, e.g. `curl_easy_perform`.
    public let function: String
    /// The CURLcode or CURLMcode as a number.
    public let curlCode: Int32
    public let message: String
    /// Passed through `URLRedaction` before it was stored here.
    public let url: String?

    public var code: String { "http.\(kind.rawValue)" }

    public var disposition: Disposition {
        switch kind {
        case .timedOut, .connectFailed, .truncated, .transfer: return .retry
        case .initialisation, .setup, .responseTooLarge, .cancelled: return .fatal
        }
    }

    public var description: String {
        var text = "\(code): \(function) failed (\(curlCode)): \(message)"
        if let url { text += " [\(url)]" }
        return text
    }

    init(kind: Kind? = nil, function: String, code: CURLcode, detail: String? = nil, url: String? = nil) {
        let text = String(cString: curl_easy_strerror(code))
        self.kind = kind ?? Self.kind(of: code)
        self.function = function
        self.curlCode = Int32(bitPattern: code.rawValue)
        // The error buffer adds which host or port; URLs in it lose their secrets too.
        self.message = URLRedaction.redact(detail.map { $0.isEmpty ? text : "\(text): \($0)" } ?? text)
        self.url = url.map(URLRedaction.redact)
    }

    init(function: String, multiCode: CURLMcode) {
        self.kind = .transfer
        self.function = function
        self.curlCode = multiCode.rawValue
        self.message = String(cString: curl_multi_strerror(multiCode))
        self.url = nil
    }

    init(kind: Kind, function: String, message: String, url: String?) {
        self.kind = kind
        self.function = function
        self.curlCode = 0
        self.message = message
        self.url = url.map(URLRedaction.redact)
    }

    private static func kind(of code: CURLcode) -> Kind {
        switch code {
        case CURLE_OPERATION_TIMEDOUT: return .timedOut
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST: return .connectFailed
        case CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING, CURLE_BAD_CONTENT_ENCODING: return .truncated
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR: return .transfer
        default: return .setup
        }
    }
}

/// The one gate every CURLcode passes through.
@inline(__always)
func check(_ code: CURLcode, _ function: String, url: String? = nil) throws(CurlError) {
    guard code == CURLE_OK else { throw CurlError(function: function, code: code, url: url) }
}

@inline(__always)
func check(_ code: CURLMcode, _ function: String) throws(CurlError) {
    guard code == CURLM_OK else { throw CurlError(function: function, multiCode: code) }
}

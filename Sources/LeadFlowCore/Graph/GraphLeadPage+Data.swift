import Foundation

// The hot path's parser and redaction over a body as curl delivered it (`Data`), read in
// place. Apart from their files so those stay free of Foundation.

extension GraphLeadPage {
    /// Parses a body in place: a 50 MB page is not copied first.
    public static func parse(_ body: Data) throws -> GraphLeadPage {
        try body.withUnsafeBytes { try parse(buffer: $0) }
    }
}

extension URLRedaction {
    /// The body with secrets removed, nil when there was none: a page with nothing to
    /// redact (nearly all of them) is not copied.
    public static func redact(utf8 data: Data) -> Data? {
        data.withUnsafeBytes { redact(buffer: $0) }.map { Data($0) }
    }

    /// The body with secrets removed, in place when it is the only reference to its bytes.
    public static func redact(owned data: inout Data) {
        guard let length = data.withUnsafeMutableBytes({ redactInPlace($0) }) else { return }
        data.count = length
    }
}

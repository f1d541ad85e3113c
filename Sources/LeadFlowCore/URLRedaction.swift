/// The one place a URL loses its secrets before it may reach a log line, an error,
/// an archived page or a test snapshot (dlt's `sanitize_url` does the same).
///
/// Graph puts the access token in the query string of every `next` URL, and LeadFlow
/// itself sends `appsecret_proof`, exchange tokens and client secrets as parameters.
public enum URLRedaction {
    /// Query parameters whose values are secrets.
    public static let secretParameters: Set<String> = [
        "access_token", "appsecret_proof", "client_secret", "fb_exchange_token", "input_token",
    ]

    /// Removes every secret parameter, name and value, wherever it stands in the text (a
    /// URL, or a message that quotes one): `?a=1&access_token=T&b=2` becomes `?a=1&b=2`.
    /// Not even the name is left, so a scan for `access_token=` finds nothing to explain.
    /// Parameter names match case-insensitively.
    public static func redact(_ text: String) -> String {
        guard let redacted = redact(utf8: Array(text.utf8)) else { return text }
        return String(decoding: redacted, as: UTF8.self)
    }

    /// The same on UTF-8 bytes (a page body as it arrived); nil when there was nothing to
    /// remove. Every delimiter is ASCII, so cuts never split a character. Bytes, not
    /// Characters: every Graph page passes through here, and walking 60 kB by grapheme
    /// cost more than decoding it.
    public static func redact(utf8 bytes: [UInt8]) -> [UInt8]? {
        bytes.withUnsafeBytes { redact(buffer: $0) }
    }

    static func redact(buffer bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        var result: [UInt8] = []
        let found = keptRanges(of: bytes) { kept in
            if result.isEmpty { result.reserveCapacity(bytes.count) }
            result += bytes[kept]
        }
        return found ? result : nil
    }

    /// The same in place, for a body nobody else holds: the kept bytes are moved down over
    /// the removed ones (never past where they are read), so a 50 MB page is not copied.
    /// Returns the new length, nil when there was nothing to remove.
    public static func redactInPlace(_ bytes: UnsafeMutableRawBufferPointer) -> Int? {
        var written = 0
        let found = keptRanges(of: UnsafeRawBufferPointer(bytes)) { kept in
            if kept.lowerBound != written, let base = bytes.baseAddress {
                (base + written).copyMemory(from: base + kept.lowerBound, byteCount: kept.count) // memmove
            }
            written += kept.count
        }
        return found ? written : nil
    }

    /// Calls `keep` with each range of `bytes` that stays, in order; false (and no call)
    /// when there is no secret to remove.
    private static func keptRanges(of bytes: UnsafeRawBufferPointer, _ keep: (Range<Int>) -> Void) -> Bool {
        var index = 0
        while index < bytes.count {
            guard let match = nextSecret(in: bytes, from: index) else {
                if index == 0 { return false }
                keep(index..<bytes.count)
                break
            }
            var cut = match.nameStart
            var resume = match.valueEnd
            if cut > index {
                let before = bytes[cut - 1]
                if before == UInt8(ascii: "&") {
                    cut -= 1                                        // "…&name=v" → "…"
                } else if before == UInt8(ascii: "?") {
                    if resume < bytes.count, bytes[resume] == UInt8(ascii: "&") {
                        resume += 1                                 // "?name=v&b" → "?b"
                    } else {
                        cut -= 1                                    // "?name=v" → ""
                    }
                }
            }
            if cut > index { keep(index..<cut) }
            index = resume
        }
        return true
    }

    private static let secretNames: [[UInt8]] = secretParameters.map { Array($0.utf8) }

    private static func nextSecret(in bytes: UnsafeRawBufferPointer, from start: Int) -> (nameStart: Int, valueEnd: Int)? {
        var searchFrom = start
        while let equals = bytes[searchFrom...].firstIndex(of: UInt8(ascii: "=")) {
            // The parameter name runs back from "=" to a delimiter.
            var nameStart = equals
            while nameStart > start, !isDelimiter(bytes[nameStart - 1]) { nameStart -= 1 }
            let valueStart = equals + 1
            if isSecretName(bytes[nameStart..<equals]) {
                var valueEnd = valueStart
                while valueEnd < bytes.count, !isValueEnd(bytes[valueEnd]) { valueEnd += 1 }
                return (nameStart, valueEnd)
            }
            searchFrom = valueStart
        }
        return nil
    }

    private static func isSecretName(_ name: Slice<UnsafeRawBufferPointer>) -> Bool {
        secretNames.contains { secret in
            secret.count == name.count && zip(secret, name).allSatisfy { $0 == ($1 >= 0x41 && $1 <= 0x5A ? $1 | 0x20 : $1) }
        }
    }

    private static func isDelimiter(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "?"), UInt8(ascii: "&"), UInt8(ascii: " "), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\n"),
             UInt8(ascii: "("), UInt8(ascii: "<"): return true
        default: return false
        }
    }

    private static func isValueEnd(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "&"), UInt8(ascii: " "), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\n"), UInt8(ascii: "#"),
             UInt8(ascii: ")"), UInt8(ascii: ">"), UInt8(ascii: "\\"): return true
        default: return false
        }
    }
}

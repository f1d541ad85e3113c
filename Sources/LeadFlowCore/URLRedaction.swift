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
        var result = ""
        result.reserveCapacity(text.utf8.count)
        var index = text.startIndex
        while index < text.endIndex {
            guard let match = nextSecret(in: text, from: index) else {
                result += text[index...]
                break
            }
            var cut = match.nameStart
            var resume = match.valueEnd
            if cut > index {
                let before = text.index(before: cut)
                if text[before] == "&" {
                    cut = before                                    // "…&name=v" → "…"
                } else if text[before] == "?" {
                    if resume < text.endIndex, text[resume] == "&" {
                        resume = text.index(after: resume)          // "?name=v&b" → "?b"
                    } else {
                        cut = before                                // "?name=v" → ""
                    }
                }
            }
            result += text[index..<cut]
            index = resume
        }
        return result
    }

    private static func nextSecret(in text: String, from start: String.Index)
        -> (nameStart: String.Index, valueEnd: String.Index)? {
        var searchFrom = start
        while let equals = text[searchFrom...].firstIndex(of: "=") {
            // The parameter name runs back from "=" to a delimiter.
            var nameStart = equals
            while nameStart > start {
                let previous = text.index(before: nameStart)
                if isDelimiter(text[previous]) { break }
                nameStart = previous
            }
            let name = text[nameStart..<equals].lowercased()
            let valueStart = text.index(after: equals)
            if secretParameters.contains(name) {
                var valueEnd = valueStart
                while valueEnd < text.endIndex, !isValueEnd(text[valueEnd]) {
                    valueEnd = text.index(after: valueEnd)
                }
                return (nameStart, valueEnd)
            }
            searchFrom = valueStart
        }
        return nil
    }

    private static func isDelimiter(_ c: Character) -> Bool {
        c == "?" || c == "&" || c == " " || c == "\"" || c == "'" || c == "\n" || c == "(" || c == "<"
    }

    private static func isValueEnd(_ c: Character) -> Bool {
        c == "&" || c == " " || c == "\"" || c == "'" || c == "\n" || c == "#" || c == ")" || c == ">" || c == "\\"
    }
}

import Foundation

/// Which Graph base URLs LeadFlow will send a token to: `https://` anywhere, `http://` only
/// to this machine (127.0.0.0/8, ::1, localhost), where the project's Graph fake runs. A
/// typo of `http://graph.facebook.com` would otherwise send every token in clear.
public enum GraphURLRule {
    /// Why `url` is refused, in one sentence; nil when it is fine.
    public static func problem(_ url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty else {
            return "is not a URL with a scheme and a host, e.g. https://graph.facebook.com"
        }
        switch scheme {
        case "https": return nil
        case "http" where isLoopback(host): return nil
        case "http": return "must be https:// (http:// sends the access token in clear; it is allowed only for 127.0.0.1, ::1 or localhost)"
        default: return "must be an https:// URL, e.g. https://graph.facebook.com"
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}

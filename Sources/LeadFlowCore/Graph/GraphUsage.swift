import Foundation

/// What Graph's usage headers say about the remaining quota (`GRAPH_API.md`, "Usage headers").
public struct GraphUsage: Sendable, Equatable {
    /// The highest of every reported percentage (call count, CPU time, total time).
    public let percent: Int
    /// Set by Graph when a business use case is throttled: wait this long.
    public let regainAccessIn: Duration?

    public static let none = GraphUsage(percent: 0, regainAccessIn: nil)

    public init(percent: Int, regainAccessIn: Duration?) {
        self.percent = percent
        self.regainAccessIn = regainAccessIn
    }

    /// Reads `X-App-Usage`, `X-Page-Usage`, `X-Ad-Account-Usage` and
    /// `X-Business-Use-Case-Usage`; headers that do not parse are ignored.
    public static func from(_ response: HTTPResponse) -> GraphUsage {
        var percent = 0
        var wait: Int?
        for name in ["X-App-Usage", "X-Page-Usage", "X-Ad-Account-Usage"] {
            if let value = response.header(name), let object = json(value) as? [String: Any] {
                percent = max(percent, maxPercent(object))
            }
        }
        if let value = response.header("X-Business-Use-Case-Usage"), let object = json(value) as? [String: Any] {
            for case let entries as [[String: Any]] in object.values {
                for entry in entries {
                    percent = max(percent, maxPercent(entry))
                    if let minutes = (entry["estimated_time_to_regain_access"] as? NSNumber)?.intValue, minutes > 0 {
                        wait = max(wait ?? 0, minutes)
                    }
                }
            }
        }
        return GraphUsage(percent: percent, regainAccessIn: wait.map { .seconds($0 * 60) })
    }

    private static func json(_ text: String) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    private static func maxPercent(_ object: [String: Any]) -> Int {
        ["call_count", "total_cputime", "total_time"].compactMap { (object[$0] as? NSNumber)?.intValue }.max() ?? 0
    }
}

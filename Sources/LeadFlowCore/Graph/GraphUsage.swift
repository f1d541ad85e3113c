import Foundation

/// What Graph's usage headers say about the remaining quota (`GRAPH_API.md`, "Usage headers").
///
/// Two scopes: `X-App-Usage` is the app's, shared by every Page and every worker;
/// `X-Page-Usage`, `X-Ad-Account-Usage` and `X-Business-Use-Case-Usage` are keyed by one
/// Page or account, so they pace only the requests made for it, never the whole app.
public struct GraphUsage: Sendable, Equatable {
    /// The highest of every reported percentage (call count, CPU time, total time), any scope.
    public let percent: Int
    /// The highest app-level percentage (`X-App-Usage`): the one worth sharing.
    public let appPercent: Int
    /// Set by Graph when a business use case is throttled: wait this long (that Page only).
    public let regainAccessIn: Duration?

    public static let none = GraphUsage(percent: 0, regainAccessIn: nil)

    /// Percentages above this are read as this: Graph reports a little over 100 when
    /// throttling, and a number beyond it means nothing more (and must not trap).
    static let percentCeiling = 1_000
    /// Graph estimates in minutes; a day is as long as a run would ever wait, whatever it says.
    public static let longestRegainMinutes = 24 * 60

    public init(percent: Int, appPercent: Int? = nil, regainAccessIn: Duration?) {
        self.percent = percent
        self.appPercent = appPercent ?? percent
        self.regainAccessIn = regainAccessIn
    }

    /// Reads `X-App-Usage`, `X-Page-Usage`, `X-Ad-Account-Usage` and
    /// `X-Business-Use-Case-Usage`; headers that do not parse are ignored, numbers clamped.
    public static func from(_ response: HTTPResponse) -> GraphUsage {
        var appPercent = 0
        if let value = response.header("X-App-Usage"), let object = json(value) as? [String: Any] {
            appPercent = maxPercent(object)
        }
        var percent = appPercent
        for name in ["X-Page-Usage", "X-Ad-Account-Usage"] {
            if let value = response.header(name), let object = json(value) as? [String: Any] {
                percent = max(percent, maxPercent(object))
            }
        }
        var wait: Int?
        if let value = response.header("X-Business-Use-Case-Usage"), let object = json(value) as? [String: Any] {
            for case let entries as [[String: Any]] in object.values {
                for entry in entries {
                    percent = max(percent, maxPercent(entry))
                    if let minutes = clamped(entry["estimated_time_to_regain_access"], to: longestRegainMinutes), minutes > 0 {
                        wait = max(wait ?? 0, minutes)
                    }
                }
            }
        }
        return GraphUsage(percent: percent, appPercent: appPercent, regainAccessIn: wait.map { .seconds($0 * 60) })
    }

    /// The app-level part alone, for the workers' shared board.
    public var appWide: GraphUsage { GraphUsage(percent: appPercent, appPercent: appPercent, regainAccessIn: nil) }

    private static func json(_ text: String) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    private static func maxPercent(_ object: [String: Any]) -> Int {
        ["call_count", "total_cputime", "total_time"].compactMap { clamped(object[$0], to: percentCeiling) }.max() ?? 0
    }

    /// A JSON number as an `Int` in 0...ceiling, whatever its size or sign (nil: not a number).
    static func clamped(_ value: Any?, to ceiling: Int) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        let double = number.doubleValue
        guard double.isFinite else { return double > 0 ? ceiling : 0 }
        return Int(min(max(double, 0), Double(ceiling)))
    }
}

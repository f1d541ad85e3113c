import Foundation

/// Metrics in Prometheus' text exposition format (version 0.0.4), as the node exporter's
/// textfile collector reads them and a Pushgateway accepts them: one `# HELP` and one
/// `# TYPE` line per family, then its samples, label values escaped.
///
/// Written by hand instead of taking swift-metrics and a Prometheus backend: a batch job
/// renders its figures once, at its end, from values it already holds, so a registry of
/// live instruments buys nothing, and two more packages would lengthen every clean build.
public struct PrometheusText: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// Only ever rises (a reset is a restart): its name ends in `_total`.
        case counter
        /// Any value, read as it is now.
        case gauge
    }

    public struct Sample: Sendable, Equatable {
        public let labels: [Label]
        public let value: Double

        public init(_ labels: [Label] = [], _ value: Double) {
            self.labels = labels
            self.value = value
        }
    }

    public struct Label: Sendable, Equatable {
        public let name: String
        public let value: String

        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public struct Family: Sendable, Equatable {
        public let name: String
        public let help: String
        public let kind: Kind
        public var samples: [Sample]
    }

    public private(set) var families: [Family] = []

    public init() {}

    /// Adds a family. Names are the program's own constants, so a bad one is a programming
    /// error: a counter without `_total`, a name or label Prometheus would refuse, a name twice.
    public mutating func add(_ name: String, _ kind: Kind, help: String, _ samples: [Sample]) {
        precondition(Self.isMetricName(name), "not a Prometheus metric name: \(name)")
        precondition(kind != .counter || name.hasSuffix("_total"), "a counter's name ends in _total: \(name)")
        precondition(!families.contains { $0.name == name }, "metric family twice: \(name)")
        for sample in samples {
            precondition(sample.labels.allSatisfy { Self.isLabelName($0.name) }, "not a Prometheus label name in \(name)")
        }
        families.append(Family(name: name, help: help, kind: kind, samples: samples))
    }

    /// A family of one unlabelled sample.
    public mutating func add(_ name: String, _ kind: Kind, help: String, value: Double) {
        add(name, kind, help: help, [Sample([], value)])
    }

    /// The exposition text; ends with a newline, as the format requires.
    public func render() -> String {
        var out = ""
        for family in families {
            out += "# HELP \(family.name) \(Self.escapeHelp(family.help))\n"
            out += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                out += family.name
                if !sample.labels.isEmpty {
                    out += "{" + sample.labels.map { "\($0.name)=\"\(Self.escapeLabelValue($0.value))\"" }.joined(separator: ",") + "}"
                }
                out += " " + Self.format(sample.value) + "\n"
            }
        }
        return out
    }

    /// A label value between double quotes: backslash, double quote and line feed escaped.
    public static func escapeLabelValue(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for character in value.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// HELP text: backslash and line feed escaped (a quote needs none there).
    public static func escapeHelp(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Whole numbers without a fraction (counts read as counts), others as Go's `%g` would
    /// read them back; NaN and the infinities as the format spells them.
    public static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        return "\(value)"
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_" || first == ":" else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == ":" }
    }

    static func isLabelName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCIILetter || first == "_", !name.hasPrefix("__") else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }
    }
}

private extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

import Foundation

/// A strict reader of Prometheus' text exposition format (0.0.4), written from the format's
/// description, independent of LeadFlow's renderer: it refuses what a lenient scraper would
/// let through (a sample before its TYPE, a family split in two, a series twice, a bad
/// escape, a counter without `_total`, a missing final newline).
struct PrometheusExposition {
    struct Sample: Equatable {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    struct ParseError: Error, CustomStringConvertible {
        let line: Int
        let message: String
        var description: String { "line \(line): \(message)" }
    }

    private(set) var types: [String: String] = [:]
    private(set) var helps: [String: String] = [:]
    private(set) var samples: [Sample] = []

    init(_ text: String) throws {
        guard text.hasSuffix("\n") else { throw ParseError(line: 0, message: "the text does not end with a newline") }
        var current: String?
        var finished: Set<String> = []
        var seen: Set<String> = []
        for (index, raw) in text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = String(raw)
            guard !line.isEmpty else { throw ParseError(line: number, message: "an empty line") }
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let rest = line.dropFirst(7)
                let name = String(rest.prefix { $0 != " " })
                guard Self.isMetricName(name), rest.count > name.count, rest[rest.index(rest.startIndex, offsetBy: name.count)] == " " else {
                    throw ParseError(line: number, message: "bad metric name in \(line)")
                }
                let value = String(rest.dropFirst(name.count + 1))
                if name != current {
                    if let current { finished.insert(current) }
                    guard !finished.contains(name) else { throw ParseError(line: number, message: "family \(name) split in two") }
                    current = name
                }
                if line.hasPrefix("# HELP ") {
                    guard helps[name] == nil else { throw ParseError(line: number, message: "HELP twice for \(name)") }
                    helps[name] = try Self.unescape(value, quotes: false, line: number)
                } else {
                    guard types[name] == nil else { throw ParseError(line: number, message: "TYPE twice for \(name)") }
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(value) else {
                        throw ParseError(line: number, message: "unknown type \(value)")
                    }
                    guard samples.allSatisfy({ $0.name != name }) else { throw ParseError(line: number, message: "TYPE after samples of \(name)") }
                    if value == "counter", !name.hasSuffix("_total") { throw ParseError(line: number, message: "counter \(name) without _total") }
                    types[name] = value
                }
                continue
            }
            guard !line.hasPrefix("#") else { continue }
            let sample = try Self.sample(line, number: number)
            guard sample.name == current, types[sample.name] != nil else {
                throw ParseError(line: number, message: "sample \(sample.name) outside its family (after TYPE \(current ?? "none"))")
            }
            let key = sample.name + "{" + sample.labels.keys.sorted().map { "\($0)=\(sample.labels[$0]!)" }.joined(separator: ",") + "}"
            guard seen.insert(key).inserted else { throw ParseError(line: number, message: "series twice: \(key)") }
            samples.append(sample)
        }
    }

    /// The value of the one sample of `name` whose labels include `labels`.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let found = samples.filter { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }
        return found.count == 1 ? found[0].value : nil
    }

    /// The sum of every sample of `name` whose labels include `labels`.
    func sum(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }.reduce(0) { $0 + $1.value }
    }

    static func isMetricName(_ name: String) -> Bool {
        name.range(of: "^[a-zA-Z_:][a-zA-Z0-9_:]*$", options: .regularExpression) != nil
    }

    static func sample(_ line: String, number: Int) throws -> Sample {
        var rest = Substring(line)
        let name = String(rest.prefix { $0 != "{" && $0 != " " })
        guard isMetricName(name) else { throw ParseError(line: number, message: "bad metric name \(name)") }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = String(rest.prefix { $0 != "=" })
                guard label.range(of: "^[a-zA-Z_][a-zA-Z0-9_]*$", options: .regularExpression) != nil, !label.hasPrefix("__") else {
                    throw ParseError(line: number, message: "bad label name \(label)")
                }
                rest = rest.dropFirst(label.count)
                guard rest.hasPrefix("=\"") else { throw ParseError(line: number, message: "label \(label) without a quoted value") }
                rest = rest.dropFirst(2)
                var value = ""
                var escaped = false
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped {
                        switch character {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw ParseError(line: number, message: "bad escape \\\(character)")
                        }
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { throw ParseError(line: number, message: "unterminated label value") }
                guard labels.updateValue(value, forKey: label) == nil else { throw ParseError(line: number, message: "label \(label) twice") }
                if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" {
                    throw ParseError(line: number, message: "expected , or } after label \(label)")
                }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { throw ParseError(line: number, message: "no space before the value") }
        let fields = rest.dropFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard (1...2).contains(fields.count) else { throw ParseError(line: number, message: "expected a value and at most a timestamp") }
        let text = String(fields[0])
        let value: Double
        switch text {
        case "NaN": value = .nan
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        default:
            guard text.range(of: "^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$", options: .regularExpression) != nil, let parsed = Double(text) else {
                throw ParseError(line: number, message: "bad value \(text)")
            }
            value = parsed
        }
        if fields.count == 2, Int64(fields[1]) == nil { throw ParseError(line: number, message: "bad timestamp \(fields[1])") }
        return Sample(name: name, labels: labels, value: value)
    }

    static func unescape(_ text: String, quotes: Bool, line: Int) throws -> String {
        var out = ""
        var escaped = false
        for character in text {
            if escaped {
                switch character {
                case "\\": out.append("\\")
                case "n": out.append("\n")
                case "\"" where quotes: out.append("\"")
                default: throw ParseError(line: line, message: "bad escape \\\(character) in HELP")
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                out.append(character)
            }
        }
        guard !escaped else { throw ParseError(line: line, message: "HELP ends in a lone backslash") }
        return out
    }
}

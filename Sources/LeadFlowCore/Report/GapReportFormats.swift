import Foundation

/// The gap report's text formats: `table` for a terminal, `md` for a ticket, `csv` one row
/// per void period, `json` in the shape `DESIGN.md` fixes (scripts depend on it).
extension GapReport {
    public enum Format: String, Sendable, CaseIterable {
        case table, md, csv, json, html
    }

    public func render(_ format: Format) -> String {
        switch format {
        case .table: return table()
        case .md: return markdown()
        case .csv: return csv()
        case .json: return json()
        case .html: return html()
        }
    }

    // MARK: - Cells shared by the formats

    static func hours(_ seconds: TimeInterval) -> String { String(format: "%.1f", seconds / 3_600) }

    /// "3 d 4 h", "5 h": how long a period lasted, for people.
    static func duration(_ seconds: TimeInterval) -> String {
        let hours = Int((seconds / 3_600).rounded())
        return hours >= 24 ? "\(hours / 24) d \(hours % 24) h" : "\(hours) h"
    }

    static func missingCell(_ period: Period) -> String {
        guard let missing = period.missing else { return "?" }
        return period.missingIsEstimate ? "~\(missing)" : String(missing)
    }

    static func rejectedCell(_ rejected: [String: Int]) -> String {
        rejected.isEmpty ? "none" : rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    static func periodCells(_ period: Period) -> [String] {
        [String(period.id), period.cause.rawValue, UTCTime.iso8601(period.startedAt), period.endedAt.map(UTCTime.iso8601) ?? "open",
         duration(period.durationSeconds), String(period.recovered), missingCell(period), String(period.lost), period.status.rawValue]
    }

    static let periodHeader = ["period", "cause", "started", "ended", "duration", "recovered", "missing", "lost", "status"]

    func connectionLine(_ c: Connection) -> String {
        let reminder = c.reminder == "not_due" ? "reminder at \(UTCTime.iso8601(c.reminderAt))" : "reminder \(c.reminder)"
        return "\(c.label) (\(c.instance), Page \(c.pageID)): \(c.status), day \(c.daysSinceAuthentication) of its authentication, \(reminder); "
            + "last healthy run \(c.lastHealthyRunAt.map(UTCTime.iso8601) ?? "never"); \(c.leadsLoaded) leads loaded; "
            + "missing \(c.missing.map(String.init) ?? "unknown"); rejected: \(Self.rejectedCell(c.rejected))"
    }

    // MARK: - table

    func table() -> String {
        var out = "Gap report, \(UTCTime.iso8601(generatedAt))\n\n"
        for c in connections {
            out += connectionLine(c) + "\n"
            out += c.periods.isEmpty ? "  no void period\n" : TextTable.render(Self.periodHeader, c.periods.map(Self.periodCells))
            out += "\n"
        }
        out += "Totals per instance\n" + TextTable.render(
            ["instance", "connections", "void periods", "open", "recovered", "missing", "lost", "rejected"],
            instances.map { [$0.instance, String($0.connections), String($0.voidPeriods), String($0.open), String($0.recovered),
                             String($0.missing), String($0.lost), String($0.rejected)] })
        return out
    }

    // MARK: - md

    func markdown() -> String {
        func row(_ cells: [String]) -> String { "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n" }
        func header(_ cells: [String]) -> String { row(cells) + row(cells.map { _ in "---" }) }
        var out = "# Gap report\n\nGenerated \(UTCTime.iso8601(generatedAt)).\n\n"
        out += "| instance | connections | void periods | open | recovered | missing | lost | rejected |\n|---|--:|--:|--:|--:|--:|--:|--:|\n"
        for i in instances {
            out += row([i.instance, String(i.connections), String(i.voidPeriods), String(i.open), String(i.recovered), String(i.missing),
                        String(i.lost), String(i.rejected)])
        }
        for c in connections {
            out += "\n## \(c.label) (\(c.instance), Page \(c.pageID))\n\n"
            out += "- status: **\(c.status.replacingOccurrences(of: "_", with: " "))**, day \(c.daysSinceAuthentication) of its authentication; "
                + "reminder: \(c.reminder.replacingOccurrences(of: "_", with: " ")) "
                + "(due \(UTCTime.iso8601(c.reminderAt)), expires \(UTCTime.iso8601(c.expiresAt)))\n"
            out += "- last healthy run: \(c.lastHealthyRunAt.map(UTCTime.iso8601) ?? "never"); leads loaded: \(c.leadsLoaded); "
                + "missing: \(c.missing.map(String.init) ?? "unknown")\n"
            out += "- rejected leads: \(Self.rejectedCell(c.rejected))\n\n"
            if c.periods.isEmpty {
                out += "No void period.\n"
            } else {
                out += header(Self.periodHeader)
                for p in c.periods { out += row(Self.periodCells(p)) }
            }
        }
        if connections.contains(where: { $0.periods.contains(where: \.missingIsEstimate) }) {
            out += "\n~ marks an estimate: the missing leads could belong to more than one period, or the period is still open.\n"
        }
        return out
    }

    // MARK: - csv

    func csv() -> String {
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var out = "instance,connection,page_id,period_id,cause,started_at,ended_at,duration_hours,recovered,missing,missing_is_estimate,lost,status,backfilled_at\r\n"
        for c in connections {
            for p in c.periods {
                out += [c.instance, c.label, c.pageID, String(p.id), p.cause.rawValue, UTCTime.iso8601(p.startedAt),
                        p.endedAt.map(UTCTime.iso8601) ?? "", Self.hours(p.durationSeconds), String(p.recovered),
                        p.missing.map(String.init) ?? "", String(p.missingIsEstimate), String(p.lost), p.status.rawValue,
                        p.backfilledAt.map(UTCTime.iso8601) ?? ""].map(field).joined(separator: ",") + "\r\n"
            }
        }
        return out
    }

    // MARK: - json

    func json() -> String {
        func date(_ value: Date?) -> Any { value.map(UTCTime.iso8601) ?? NSNull() }
        let object: [String: Any] = [
            "generated_at": UTCTime.iso8601(generatedAt),
            "from": date(from), "to": date(to),
            "connections": connections.map { c -> [String: Any] in
                [
                    "instance": c.instance, "label": c.label, "page_id": c.pageID, "name": c.pageName ?? NSNull(), "status": c.status,
                    "authenticated_at": UTCTime.iso8601(c.authenticatedAt), "days_since_authentication": c.daysSinceAuthentication,
                    "reminder": c.reminder, "reminder_at": UTCTime.iso8601(c.reminderAt), "expires_at": UTCTime.iso8601(c.expiresAt),
                    "last_healthy_run_at": date(c.lastHealthyRunAt), "leads_loaded": c.leadsLoaded,
                    "missing": c.missing ?? NSNull() as Any,
                    "void_periods": c.periods.map { p -> [String: Any] in
                        ["id": p.id, "cause": p.cause.rawValue, "started_at": UTCTime.iso8601(p.startedAt), "ended_at": date(p.endedAt),
                         "duration_hours": (p.durationSeconds / 36).rounded() / 100, "recovered": p.recovered,
                         "missing": p.missing ?? NSNull() as Any, "missing_is_estimate": p.missingIsEstimate, "lost": p.lost,
                         "status": p.status.rawValue, "backfilled_at": date(p.backfilledAt)]
                    },
                    "rejected": c.rejected,
                ]
            },
            "instances": instances.map { i -> [String: Any] in
                ["instance": i.instance, "connections": i.connections, "void_periods": i.voidPeriods, "open": i.open,
                 "recovered": i.recovered, "missing": i.missing, "lost": i.lost, "rejected": i.rejected]
            },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

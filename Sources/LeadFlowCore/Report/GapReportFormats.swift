import Foundation

/// The gap report's text formats, each opening with the headline per instance: `table` for a
/// terminal, `md` for a ticket, `csv` one row per void period (and one per connection without
/// any), `json` in the shape `DESIGN.md` fixes (scripts depend on it: fields are only added).
/// People's formats write names, local dates and days; CSV and JSON keep ids and UTC instants.
extension GapReport {
    public enum Format: String, Sendable, CaseIterable {
        case table, md, csv, json, html
    }

    /// The JSON's shape: 2 added the headline, names, `recover_by` and `waiting`.
    public static let jsonSchemaVersion = 2

    public func render(_ format: Format) -> String {
        switch format {
        case .table: return table()
        case .md: return markdown()
        case .csv: return csv()
        case .json: return json()
        case .html: return html()
        }
    }

    // MARK: - Words and cells shared by the formats

    static func hours(_ seconds: TimeInterval) -> String { String(format: "%.1f", seconds / 3_600) }

    static func words(_ code: String) -> String { code.replacingOccurrences(of: "_", with: " ") }

    static func statusWords(_ status: Status) -> String {
        status == .open ? "open (void)" : words(status.rawValue)
    }

    /// "Globex Software [2001]": the Page's name, its id in brackets.
    static func pageCell(_ c: Connection) -> String {
        c.pageName.map { "\($0) [\(c.pageID)]" } ?? "Page \(c.pageID)"
    }

    /// "Ana Ruiz [77]".
    static func authenticatorCell(_ c: Connection) -> String {
        switch (c.authenticatorName, c.authenticatorID) {
        case let (name?, id?): return "\(name) [\(id)]"
        case let (name?, nil): return name
        case let (nil, id?): return "Facebook user \(id)"
        case (nil, nil): return "unknown"
        }
    }

    static func waitingCell(_ period: Period) -> String {
        guard let waiting = period.waiting else { return "?" }
        return period.missingIsEstimate ? "~\(waiting)" : String(waiting)
    }

    static func lostCell(_ period: Period) -> String {
        period.lostEstimate > 0 ? "~\(period.lost + period.lostEstimate)" : String(period.lost)
    }

    static func rejectedCell(_ rejected: [String: Int]) -> String {
        rejected.isEmpty ? "none" : rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    func periodCells(_ period: Period) -> [String] {
        [String(period.number), Self.words(period.cause.rawValue), dates.dayAndTime(period.startedAt),
         period.endedAt.map(dates.dayAndTime) ?? "open", ReportDates.days(period.durationSeconds), String(period.recovered),
         Self.waitingCell(period), Self.lostCell(period), period.recoverBy.map(dates.dayWithYear) ?? "-", Self.statusWords(period.status)]
    }

    static let periodHeader = ["#", "cause", "started", "ended", "duration", "recovered", "waiting", "lost", "recover by", "status"]
    /// Which of `periodHeader`'s columns hold counts (right-aligned where a format can).
    static let periodCountColumns = 5...7

    static let totalsHeader = ["instance", "connections", "void periods", "open", "recovered", "waiting", "lost", "rejected", "act by"]

    func totalsCells(_ i: InstanceTotals) -> [String] {
        [i.instance, String(i.connections), String(i.voidPeriods), String(i.open), String(i.recovered), String(i.waiting),
         String(i.lost), String(i.rejected), i.actBy.map(dates.dayWithYear) ?? "-"]
    }

    /// "Gap report for globex, 3 Jul 2026 21:00 UTC": one instance's report names only it.
    var title: String {
        "Gap report" + (instances.count == 1 ? " for \(instances[0].instance)" : "")
    }

    var generatedLine: String { "\(dates.dayAndTime(generatedAt)) \(dates.zoneName)" }

    /// "authenticated 12 Apr 2026 by Priya Shah [42]; reminder 26 Jun, expires 11 Jul".
    func cycleLine(_ c: Connection) -> String {
        let ended = c.expiresAt <= generatedAt
        return "authenticated \(dates.dayWithYear(c.authenticatedAt)) by \(Self.authenticatorCell(c)); "
            + (ended ? "expired \(dates.day(c.expiresAt))" : "reminder \(dates.day(c.reminderAt)), expires \(dates.day(c.expiresAt))")
            + (c.recoverBy.map { "; recover by \(dates.day($0))" } ?? "")
    }

    /// "last healthy run 3 Jul 2026 21:00; 4571 leads loaded; 0 waiting in Facebook; rejected: none".
    func countsLine(_ c: Connection) -> String {
        let estimate = c.periods.contains { $0.missingIsEstimate && $0.waiting != nil }
        return "last healthy run \(c.lastHealthyRunAt.map(dates.dayAndTime) ?? "never"); \(c.leadsLoaded) leads loaded; "
            + "\(c.waiting.map { (estimate ? "~" : "") + String($0) } ?? "unknown") waiting in Facebook; "
            + "rejected: \(Self.rejectedCell(c.rejected))"
            + (c.late > 0 ? "; \(c.late) late (counted by Facebook, not returned by Graph yet; re-read hourly)" : "")
    }

    // MARK: - table

    func table() -> String {
        var out = "\(title), \(generatedLine)\n\n"
        out += instances.map(\.headline).joined(separator: "\n") + (instances.isEmpty ? "No connections.\n" : "\n")
        for c in connections {
            out += "\n\(Self.pageCell(c)), \(c.label) (\(c.instance)): \(Self.words(c.status))\n"
            out += "  \(cycleLine(c))\n  \(countsLine(c))\n"
            out += c.periods.isEmpty ? "  no void period\n"
                : TextTable.render(Self.periodHeader, c.periods.map(periodCells)).split(separator: "\n").map { "  " + $0 + "\n" }.joined()
        }
        out += "\nTotals per instance\n" + TextTable.render(Self.totalsHeader, instances.map(totalsCells))
        return out
    }

    // MARK: - md

    func markdown() -> String {
        func row(_ cells: [String]) -> String { "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n" }
        var out = "# \(title)\n\n"
        for i in instances {
            out += "- **\(i.instance)**: \(i.summary)\n"
        }
        out += "\nAs of \(generatedLine).\n\n"
        out += row(Self.totalsHeader) + "|---|--:|--:|--:|--:|--:|--:|--:|---|\n"
        for i in instances { out += row(totalsCells(i)) }
        for c in connections {
            out += "\n## \(Self.pageCell(c)), \(c.label) (\(c.instance))\n\n"
            out += "- status: **\(Self.words(c.status))**; \(cycleLine(c))\n"
            out += "- \(countsLine(c))\n\n"
            if c.periods.isEmpty {
                out += "No void period.\n"
            } else {
                out += row(Self.periodHeader) + "|" + Self.periodHeader.indices.map { Self.periodCountColumns.contains($0) || $0 == 0 ? "--:|" : "---|" }.joined() + "\n"
                for p in c.periods { out += row(periodCells(p)) }
            }
        }
        if connections.contains(where: { $0.periods.contains(where: \.missingIsEstimate) }) {
            out += "\n~ marks an estimate: the waiting leads could belong to more than one period, or the period is still open "
                + "(the Page's lead rate before it, times the days since its last healthy run).\n"
        }
        return out
    }

    // MARK: - csv

    /// The first fourteen columns are the ones of schema 1, in their order; the rest are added.
    static let csvHeader = ["instance", "connection", "page_id", "period_id", "cause", "started_at", "ended_at", "duration_hours",
                            "recovered", "missing", "missing_is_estimate", "lost", "status", "backfilled_at",
                            "page_name", "authenticator_id", "authenticator_name", "connection_status", "period_number", "waiting",
                            "recover_by", "connection_waiting", "connection_recover_by", "act_by", "attention"]

    func csv() -> String {
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        func iso(_ date: Date?) -> String { date.map(UTCTime.iso8601) ?? "" }
        var out = Self.csvHeader.joined(separator: ",") + "\r\n"
        for c in connections {
            let connectionCells = [c.pageName ?? "", c.authenticatorID ?? "", c.authenticatorName ?? "", c.status]
            let tail = [c.waiting.map(String.init) ?? "", iso(c.recoverBy), iso(c.attention?.actBy), c.attention?.sentence ?? ""]
            // A connection without a period still gets its row: a healthy one is news too.
            let rows: [[String]] = c.periods.isEmpty
                ? [[c.instance, c.label, c.pageID, "", "", "", "", "", "", "", "", "", "", ""] + connectionCells + ["", "", ""] + tail]
                : c.periods.map { p in
                    [c.instance, c.label, c.pageID, String(p.id), p.cause.rawValue, UTCTime.iso8601(p.startedAt), iso(p.endedAt),
                     Self.hours(p.durationSeconds), String(p.recovered), p.missing.map(String.init) ?? "", String(p.missingIsEstimate),
                     String(p.lost), p.status.rawValue, iso(p.backfilledAt)]
                        + connectionCells + [String(p.number), p.waiting.map(String.init) ?? "", iso(p.recoverBy)] + tail
                }
            for row in rows { out += row.map(field).joined(separator: ",") + "\r\n" }
        }
        return out
    }

    // MARK: - json

    func json() -> String {
        func date(_ value: Date?) -> Any { value.map(UTCTime.iso8601) ?? NSNull() }
        func orNull(_ value: (any Sendable)?) -> Any {
            if let value { return value }
            return NSNull()
        }
        let object: [String: Any] = [
            "schema_version": Self.jsonSchemaVersion,
            "time_zone": dates.zoneName,
            "generated_at": UTCTime.iso8601(generatedAt),
            "from": date(from), "to": date(to),
            "connections": connections.map { c -> [String: Any] in
                [
                    "instance": c.instance, "label": c.label, "page_id": c.pageID, "name": orNull(c.pageName), "page_name": orNull(c.pageName),
                    "authenticator": ["id": orNull(c.authenticatorID), "name": orNull(c.authenticatorName)],
                    "status": c.status,
                    "authenticated_at": UTCTime.iso8601(c.authenticatedAt), "days_since_authentication": c.daysSinceAuthentication,
                    "reminder": c.reminder, "reminder_at": UTCTime.iso8601(c.reminderAt), "expires_at": UTCTime.iso8601(c.expiresAt),
                    "last_healthy_run_at": date(c.lastHealthyRunAt), "leads_loaded": c.leadsLoaded, "late": c.late,
                    "missing": orNull(c.missing), "waiting": orNull(c.waiting), "recover_by": date(c.recoverBy),
                    "attention": c.attention.map { a -> Any in
                        ["kind": a.kind.rawValue, "act_by": date(a.actBy), "sentence": a.sentence] as [String: Any]
                    } ?? NSNull(),
                    "void_periods": c.periods.map { p -> [String: Any] in
                        ["id": p.id, "number": p.number, "cause": p.cause.rawValue, "started_at": UTCTime.iso8601(p.startedAt),
                         "ended_at": date(p.endedAt), "duration_hours": (p.durationSeconds / 36).rounded() / 100, "recovered": p.recovered,
                         "missing": orNull(p.missing), "missing_is_estimate": p.missingIsEstimate, "lost": p.lost,
                         "lost_estimate": p.lostEstimate, "waiting": orNull(p.waiting), "status": p.status.rawValue,
                         "backfilled_at": date(p.backfilledAt), "recover_by": date(p.recoverBy)]
                    },
                    "rejected": c.rejected,
                ]
            },
            "instances": instances.map { i -> [String: Any] in
                ["instance": i.instance, "headline": i.headline, "act_by": date(i.actBy), "waiting": i.waiting,
                 "connections": i.connections, "void_periods": i.voidPeriods, "open": i.open,
                 "recovered": i.recovered, "missing": i.missing, "lost": i.lost, "rejected": i.rejected]
            },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

import Foundation

/// The gap report as one self-contained HTML file: inline CSS and SVG, no script, nothing
/// fetched. Per connection, a timeline of its authentication cycles (healthy, reminder
/// window, void, backfilled) over its daily lead counts, and the table of periods beneath.
extension GapReport {
    static let chartWidth = 960.0
    static let barsHeight = 56.0
    static let bandTop = 64.0
    static let bandHeight = 22.0

    func html() -> String {
        var body = "<h1>Gap report</h1>\n<p class=\"meta\">Generated \(Self.escape(UTCTime.iso8601(generatedAt))). "
            + "Leads created during a void period stay in Facebook; this report accounts for each of them.</p>\n"
        body += "<table class=\"totals\"><thead><tr><th>instance</th><th>connections</th><th>void periods</th><th>open</th>"
            + "<th>recovered</th><th>missing</th><th>lost</th><th>rejected</th></tr></thead><tbody>\n"
        for i in instances {
            body += "<tr><td>\(Self.escape(i.instance))</td>" + [i.connections, i.voidPeriods, i.open, i.recovered, i.missing, i.lost, i.rejected]
                .map { "<td class=\"n\">\($0)</td>" }.joined() + "</tr>\n"
        }
        body += "</tbody></table>\n" + Self.legend
        for c in connections { body += section(c) }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>LeadFlow gap report</title>
            <style>\(Self.css)</style></head>
            <body>
            \(body)</body></html>

            """
    }

    private func section(_ c: Connection) -> String {
        var out = "<section class=\"connection\" id=\"connection-\(Self.escape(c.label))\">\n"
        out += "<h2>\(Self.escape(c.label)) <span class=\"status \(c.status)\">\(c.status.replacingOccurrences(of: "_", with: " "))</span></h2>\n"
        out += "<p class=\"meta\">\(Self.escape(c.pageName ?? "Page")) · instance \(Self.escape(c.instance)) · Page \(Self.escape(c.pageID)) · "
            + "day \(c.daysSinceAuthentication) of its authentication · reminder \(c.reminder.replacingOccurrences(of: "_", with: " ")) · "
            + "last healthy run \(c.lastHealthyRunAt.map(UTCTime.iso8601) ?? "never") · \(c.leadsLoaded) leads loaded · "
            + "missing \(c.missing.map(String.init) ?? "unknown") · rejected: \(Self.escape(Self.rejectedCell(c.rejected)))</p>\n"
        out += timeline(c)
        if c.periods.isEmpty {
            out += "<p>No void period.</p>\n"
        } else {
            out += "<table class=\"periods\"><thead><tr>" + Self.periodHeader.map { "<th>\($0)</th>" }.joined() + "</tr></thead><tbody>\n"
            for p in c.periods {
                let cells = Self.periodCells(p)
                out += "<tr class=\"period \(p.status.rawValue)\">" + cells.enumerated().map { index, cell in
                    index >= 5 && index <= 7 ? "<td class=\"n\">\(Self.escape(cell))</td>" : "<td>\(Self.escape(cell))</td>"
                }.joined() + "</tr>\n"
            }
            out += "</tbody></table>\n"
        }
        return out + "</section>\n"
    }

    /// The connection's timeline as inline SVG.
    private func timeline(_ c: Connection) -> String {
        let day = 86_400.0
        let earliest = ([c.cycleStarts.first, c.dailyLeads.keys.min(), c.periods.first?.startedAt].compactMap { $0 }).min() ?? generatedAt
        let start = Self.dayStart(from ?? earliest)
        let end = max(to ?? generatedAt, start.addingTimeInterval(day))
        let span = end.timeIntervalSince(start)
        func x(_ date: Date) -> Double { max(0, min(Self.chartWidth, date.timeIntervalSince(start) / span * Self.chartWidth)) }
        func rect(_ from: Date, _ to: Date, _ y: Double, _ height: Double, _ css: String, _ title: String) -> String {
            let left = x(from), width = max(x(to) - left, 1)
            return "<rect class=\"\(css)\" x=\"\(Self.number(left))\" y=\"\(Self.number(y))\" width=\"\(Self.number(width))\" height=\"\(Self.number(height))\"><title>\(Self.escape(title))</title></rect>"
        }
        var shapes: [String] = []
        // Daily lead counts, as bars.
        let peak = Double(c.dailyLeads.values.max() ?? 0)
        for (date, count) in c.dailyLeads.sorted(by: { $0.key < $1.key }) where date >= start && date < end && peak > 0 {
            let height = max(1, Double(count) / peak * Self.barsHeight)
            shapes.append(rect(date, date.addingTimeInterval(day), Self.barsHeight - height, height, "leads",
                               "\(UTCTime.iso8601(date).prefix(10)): \(count) leads loaded"))
        }
        // Authentication cycles: healthy, then the reminder window, until the next cycle.
        let cycles = c.cycleStarts.sorted()
        for (index, cycleStart) in cycles.enumerated() {
            let cycleEnd = index + 1 < cycles.count ? cycles[index + 1] : end
            let expiry = cycleStart.addingTimeInterval(policy.validity.timeInterval)
            let reminder = expiry.addingTimeInterval(-policy.reminderLead.timeInterval)
            shapes.append(rect(cycleStart, min(reminder, cycleEnd), Self.bandTop, Self.bandHeight, "healthy",
                               "cycle from \(UTCTime.iso8601(cycleStart)): healthy"))
            if reminder < cycleEnd {
                shapes.append(rect(reminder, min(expiry, cycleEnd), Self.bandTop, Self.bandHeight, "reminder",
                                   "reminder window from \(UTCTime.iso8601(reminder))"))
            }
        }
        // Void periods over the cycles: red while void, blue once backfilled, striped when leads were lost.
        for p in c.periods {
            let css = p.status == .recovered ? "backfilled" : p.status == .partlyLost ? "lost" : "void"
            shapes.append(rect(p.startedAt, p.endedAt ?? end, Self.bandTop - 4, Self.bandHeight + 8, "period \(css)",
                               "void period \(p.id) (\(p.cause.rawValue)), \(p.status.rawValue): recovered \(p.recovered), lost \(p.lost)"))
        }
        // Month ticks.
        var ticks: [String] = []
        func firstOfMonth(_ year: Int, _ month: Int) -> Date {
            UTCTime.date(.init(year: year, month: month, day: 1, hour: 0, minute: 0, second: 0, microsecond: 0))
        }
        let first = UTCTime.fields(start)
        var tick = firstOfMonth(first.year, first.month)
        while tick <= end {
            if tick >= start {
                let tx = Self.number(x(tick))
                ticks.append("<line class=\"tick\" x1=\"\(tx)\" x2=\"\(tx)\" y1=\"0\" y2=\"\(Self.number(Self.bandTop + Self.bandHeight + 6))\"/>")
                // A label needs room to its right; the last one near the edge is left out.
                if x(tick) < Self.chartWidth - 56 {
                    ticks.append("<text x=\"\(Self.number(x(tick) + 3))\" y=\"\(Self.number(Self.bandTop + Self.bandHeight + 20))\">\(UTCTime.iso8601(tick).prefix(7))</text>")
                }
            }
            let f = UTCTime.fields(tick)
            tick = firstOfMonth(f.month == 12 ? f.year + 1 : f.year, f.month == 12 ? 1 : f.month + 1)
        }
        let height = Self.bandTop + Self.bandHeight + 26
        return "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Self.number(Self.chartWidth)) \(Self.number(height))\" "
            + "role=\"img\" aria-label=\"timeline of \(Self.escape(c.label))\">" + (ticks + shapes).joined() + "</svg>\n"
    }

    static let legend = """
        <p class="legend"><span class="key healthy"></span>healthy <span class="key reminder"></span>reminder window \
        <span class="key void"></span>void <span class="key backfilled"></span>void, backfilled \
        <span class="key lost"></span>void, leads lost <span class="key leads"></span>leads loaded per day</p>

        """

    static let css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2430;margin:24px auto;max-width:1000px;padding:0 16px}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 4px}.meta{color:#5b6473;margin:2px 0 8px}
        table{border-collapse:collapse;margin:8px 0 4px;width:100%}th,td{border-bottom:1px solid #e3e6eb;padding:4px 8px;text-align:left;white-space:nowrap}
        th{background:#f4f6f8;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
        .status{font-size:12px;border-radius:10px;padding:1px 8px;vertical-align:middle;font-weight:600}
        .status.healthy{background:#dcf2e3;color:#17643a}.status.reminder_due{background:#fff0c7;color:#7a5600}.status.void{background:#fbdada;color:#8f1d1d}
        tr.open td,tr.awaiting_backfill td{background:#fff5f5}tr.partly_lost td{background:#fff4e8}
        svg.timeline{width:100%;height:auto;display:block;margin:6px 0}svg text{font-size:11px;fill:#5b6473}
        .tick{stroke:#e3e6eb}.leads{fill:#7d8899}.healthy{fill:#6cc48a}.reminder{fill:#f2c14e}
        .void{fill:#e05252}.backfilled{fill:#4a7fd6}.lost{fill:#9b59b6}rect.period{stroke:#fff;stroke-width:1}
        .legend{color:#5b6473}.key{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px;vertical-align:baseline}
        .key.healthy{background:#6cc48a}.key.reminder{background:#f2c14e}.key.void{background:#e05252}.key.backfilled{background:#4a7fd6}
        .key.lost{background:#9b59b6}.key.leads{background:#7d8899}
        """

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    static func dayStart(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400)
    }
}

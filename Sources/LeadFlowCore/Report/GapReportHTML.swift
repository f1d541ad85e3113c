import Foundation

/// The gap report as one self-contained HTML file: inline CSS and SVG, no script, nothing
/// fetched, so it can be sent to a customer as it is. The headline per instance first; then
/// per connection what it needs, and a timeline of its days over one axis shared by every
/// connection: leads loaded, waiting in Facebook and lost, over its authentication cycles and
/// void periods, with the day each void period's leads start to be lost (`recover by`).
///
/// Colours are Okabe and Ito's palette (told apart with every common colour-blindness), and
/// nothing is told by colour alone: loaded bars are solid, waiting ones hatched one way, lost
/// ones cross-hatched; void stretches are dark and striped with their number written in;
/// markers are lines of their own dash with their words beside them. Printed in black and
/// white, the page still reads.
extension GapReport {
    static let chartWidth = 960.0
    static let barsTop = 24.0
    static let barsHeight = 64.0
    static let bandTop = 94.0
    static let bandHeight = 20.0
    static let chartHeight = 132.0

    func html() -> String {
        var body = "<svg class=\"defs\" width=\"0\" height=\"0\" aria-hidden=\"true\"><defs>\(Self.patterns)</defs></svg>\n"
        body += "<h1>\(Self.escape(title))</h1>\n"
        body += "<p class=\"meta\">As of \(Self.escape(generatedLine)). Leads created while a connection is void stay in Facebook "
            + "for 90 days; this report accounts for each of them.</p>\n"
        for i in instances {
            let healthy = connections.allSatisfy { $0.instance != i.instance || $0.attention == nil }
            body += "<p class=\"headline \(healthy ? "healthy" : "needs")\"><strong>\(Self.escape(i.instance))</strong>: "
                + "\(Self.escape(i.summary))</p>\n"
        }
        body += "<table class=\"totals\"><thead><tr>" + Self.totalsHeader.map { "<th>\($0)</th>" }.joined() + "</tr></thead><tbody>\n"
        for i in instances {
            body += "<tr>" + totalsCells(i).enumerated().map { index, cell in
                (1...7).contains(index) ? "<td class=\"n\">\(Self.escape(cell))</td>" : "<td>\(Self.escape(cell))</td>"
            }.joined() + "</tr>\n"
        }
        body += "</tbody></table>\n" + Self.legend
        let axis = Axis(report: self)
        for c in connections { body += section(c, axis: axis) }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>LeadFlow \(Self.escape(title.lowercased()))</title>
            <style>\(Self.css)</style></head>
            <body>
            \(body)</body></html>

            """
    }

    private func section(_ c: Connection, axis: Axis) -> String {
        var out = "<section class=\"connection\" id=\"connection-\(Self.escape(c.label))\">\n"
        out += "<h2>\(Self.escape(c.pageTitle))" + (c.pageName == nil ? "" : " <span class=\"id\">[\(Self.escape(c.pageID))]</span>")
            + " <span class=\"status \(c.status)\">\(Self.words(c.status))</span></h2>\n"
        if let attention = c.attention {
            out += "<p class=\"attention\">\(Self.escape(attention.sentence))</p>\n"
        }
        out += "<p class=\"meta\">\(Self.escape(c.label)) in \(Self.escape(c.instance)) · \(Self.escape(cycleLine(c)))<br>"
            + "\(Self.escape(countsLine(c)))</p>\n"
        out += chartLegend(c)
        out += timeline(c, axis: axis)
        if c.periods.isEmpty {
            out += "<p>No void period.</p>\n"
        } else {
            out += "<table class=\"periods\"><thead><tr>" + Self.periodHeader.map { "<th>\($0)</th>" }.joined() + "</tr></thead><tbody>\n"
            for p in c.periods {
                out += "<tr class=\"period \(p.status.rawValue)\">" + periodCells(p).enumerated().map { index, cell in
                    Self.periodCountColumns.contains(index) || index == 0 ? "<td class=\"n\">\(Self.escape(cell))</td>" : "<td>\(Self.escape(cell))</td>"
                }.joined() + "</tr>\n"
            }
            out += "</tbody></table>\n"
        }
        return out + "</section>\n"
    }

    /// The connection's totals beside the swatches they are drawn with.
    private func chartLegend(_ c: Connection) -> String {
        let estimate = c.periods.contains { $0.missingIsEstimate && $0.waiting != nil }
        let lost = c.periods.reduce(0) { $0 + $1.lost + $1.lostEstimate }
        let lostEstimate = c.periods.contains { $0.lostEstimate > 0 }
        return "<p class=\"totals-legend\">Per day: \(Self.swatch("loaded")) \(Self.count(c.leadsLoaded)) loaded "
            + "\(Self.swatch("waiting")) \(c.waiting.map { (estimate ? "~" : "") + Self.count($0) } ?? "unknown") waiting in Facebook "
            + "\(Self.swatch("lost")) \(lostEstimate ? "~" : "")\(Self.count(lost)) lost</p>\n"
    }

    /// One horizontal scale for every connection, so their days line up: from the earliest
    /// day any of them shows to the latest `recover by` (or now), and one vertical scale.
    struct Axis {
        let start: Date
        let end: Date
        let peak: Double

        init(report: GapReport) {
            let connections = report.connections
            let earliest = connections.flatMap { c in [c.cycleStarts.min(), c.days.keys.min(), c.periods.first?.startedAt].compactMap { $0 } }.min()
            start = report.dates.startOfDay(report.from ?? earliest ?? report.generatedAt)
            // The deadlines ahead are part of the story: the axis runs on to them, and a few days past.
            let ahead = connections.flatMap { c in [c.recoverBy, c.status == "reminder_due" ? c.expiresAt : nil].compactMap { $0 } }
            let last = ([report.generatedAt] + ahead).max()!
            end = max(report.to ?? last.addingTimeInterval(ahead.contains { $0 > report.generatedAt } ? 4 * 86_400 : 0),
                      start.addingTimeInterval(86_400))
            peak = connections.flatMap { $0.days.values.map { Double($0.loaded) + $0.waiting + $0.lost } }.max() ?? 0
        }

        func x(_ date: Date) -> Double {
            max(0, min(GapReport.chartWidth, date.timeIntervalSince(start) / end.timeIntervalSince(start) * GapReport.chartWidth))
        }
    }

    /// The connection's timeline as inline SVG.
    private func timeline(_ c: Connection, axis: Axis) -> String {
        func n(_ value: Double) -> String { Self.number(value) }
        func rect(_ x: Double, _ y: Double, _ width: Double, _ height: Double, _ css: String, _ title: String) -> String {
            "<rect class=\"\(css)\" x=\"\(n(x))\" y=\"\(n(y))\" width=\"\(n(max(width, 0.5)))\" height=\"\(n(height))\"><title>\(Self.escape(title))</title></rect>"
        }
        var back: [String] = [], shapes: [String] = [], marks: [String] = []
        let now = axis.x(generatedAt)
        // What lies ahead of now is only the deadlines: shaded, so it is not read as a quiet spell.
        if now < Self.chartWidth {
            back.append(rect(now, Self.barsTop - 8, Self.chartWidth - now, Self.bandTop + Self.bandHeight - Self.barsTop + 8, "future", "ahead"))
        }
        // Daily bars, stacked from the baseline: loaded, waiting, lost.
        if axis.peak > 0 {
            let scale = Self.barsHeight / axis.peak
            let bottom = Self.barsTop + Self.barsHeight
            for (day, counts) in c.days.sorted(by: { $0.key < $1.key }) where day >= axis.start && day < axis.end {
                let left = axis.x(day), width = axis.x(dates.startOfNextDay(day)) - left
                var top = bottom
                var what = ["\(counts.loaded) loaded"]
                if counts.waiting >= 0.05 { what.append("~\(Self.count(Int(counts.waiting.rounded()))) waiting") }
                if counts.lost >= 0.05 { what.append("~\(Self.count(Int(counts.lost.rounded()))) lost") }
                let title = "\(dates.dayWithYear(day)): " + what.joined(separator: ", ")
                for (value, css) in [(Double(counts.loaded), "loaded"), (counts.waiting, "waiting"), (counts.lost, "lost")] where value > 0 {
                    let height = value * scale
                    top -= height
                    // Loaded bars keep a hairline gap so single days read as days; estimates are areas.
                    shapes.append(rect(left, top, css == "loaded" ? width - 0.6 : width, height, css, title))
                }
            }
            marks.append("<line class=\"grid\" x1=\"0\" x2=\"\(n(Self.chartWidth))\" y1=\"\(n(Self.barsTop))\" y2=\"\(n(Self.barsTop))\"/>")
            marks.append("<text class=\"scale\" x=\"2\" y=\"\(n(Self.barsTop - 3))\">\(Self.count(Int(axis.peak.rounded()))) a day</text>")
        }
        // Authentication cycles: healthy, then the reminder window, until the next cycle or now.
        let cycles = c.cycleStarts.sorted()
        for (index, cycleStart) in cycles.enumerated() {
            let cycleEnd = min(index + 1 < cycles.count ? cycles[index + 1] : generatedAt, generatedAt)
            let expiry = cycleStart.addingTimeInterval(policy.validity.timeInterval)
            let reminder = expiry.addingTimeInterval(-policy.reminderLead.timeInterval)
            shapes.append(rect(axis.x(cycleStart), Self.bandTop, axis.x(min(reminder, cycleEnd)) - axis.x(cycleStart), Self.bandHeight,
                               "healthy", "authenticated \(dates.dayWithYear(cycleStart)): healthy"))
            if reminder < cycleEnd {
                shapes.append(rect(axis.x(reminder), Self.bandTop, axis.x(min(expiry, cycleEnd)) - axis.x(reminder), Self.bandHeight,
                                   "reminder", "reminder window from \(dates.dayWithYear(reminder))"))
            }
        }
        // Void periods over the cycles, each with its number written in when it fits.
        for p in c.periods {
            let left = axis.x(p.startedAt), width = axis.x(p.endedAt ?? generatedAt) - left
            shapes.append(rect(left, Self.bandTop - 3, width, Self.bandHeight + 6, "void",
                               "void period #\(p.number) (\(Self.words(p.cause.rawValue))), \(Self.statusWords(p.status)): "
                                   + "recovered \(p.recovered), waiting \(Self.waitingCell(p)), lost \(Self.lostCell(p))"))
            let label = width > 120 ? "#\(p.number) void, \(ReportDates.days(p.durationSeconds))" : width > 16 ? "#\(p.number)" : ""
            if !label.isEmpty {
                shapes.append("<text class=\"void-label\" x=\"\(n(left + 4))\" y=\"\(n(Self.bandTop + 14))\">\(Self.escape(label))</text>")
            }
        }
        // Markers: now, the reminder's deadline, and the day each unrecovered period starts losing leads.
        // Now's label sits left of its line and the deadlines' right of theirs, so the two do not
        // cover each other; a label near the right edge ends at its line instead of running off.
        func marker(_ date: Date, _ css: String, _ label: String, row: Double, leftOfLine: Bool = false) {
            let mx = axis.x(date)
            marks.append("<line class=\"\(css)\" x1=\"\(n(mx))\" x2=\"\(n(mx))\" y1=\"\(n(row + 2))\" y2=\"\(n(Self.bandTop + Self.bandHeight + 3))\"/>")
            let anchorEnd = (leftOfLine && mx > 90) || mx > Self.chartWidth - 130
            marks.append("<text class=\"\(css)-label\" x=\"\(n(anchorEnd ? mx - 4 : mx + 4))\" y=\"\(n(row))\"\(anchorEnd ? " text-anchor=\"end\"" : "")>"
                + "\(Self.escape(label))</text>")
        }
        marker(generatedAt, "now", "now, \(dates.day(generatedAt))", row: 12, leftOfLine: true)
        if c.status == "reminder_due" {
            marker(c.expiresAt, "expiry", "expires \(dates.day(c.expiresAt))", row: 12)
        }
        for p in c.periods {
            if let recoverBy = p.recoverBy {
                marker(recoverBy, "recover-by", "#\(p.number): recover by \(dates.day(recoverBy))", row: 12)
                let rx = axis.x(recoverBy)
                marks.append("<path class=\"recover-by-mark\" d=\"M\(n(rx - 5)) \(n(Self.barsTop - 6))h10l-5 7z\"/>")
            }
        }
        // Month ticks, in the report's zone.
        var ticks: [String] = []
        var tick = dates.startOfNextMonth(dates.startOfDay(axis.start).addingTimeInterval(-1))
        if tick < axis.start { tick = dates.startOfNextMonth(axis.start) }
        var first = true
        while tick <= axis.end {
            let tx = axis.x(tick)
            ticks.append("<line class=\"tick\" x1=\"\(n(tx))\" x2=\"\(n(tx))\" y1=\"\(n(Self.barsTop))\" y2=\"\(n(Self.bandTop + Self.bandHeight + 6))\"/>")
            if tx < Self.chartWidth - 40 {
                let f = ReportDates.localFields(tick, dates.timeZone)
                let label = ReportDates.months[f.month - 1] + (first || f.month == 1 ? " \(f.year)" : "")
                ticks.append("<text x=\"\(n(tx + 3))\" y=\"\(n(Self.chartHeight - 4))\">\(label)</text>")
                first = false
            }
            tick = dates.startOfNextMonth(tick)
        }
        return "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(n(Self.chartWidth)) \(n(Self.chartHeight))\" "
            + "role=\"img\" aria-label=\"timeline of \(Self.escape(c.pageTitle))\">" + (back + ticks + shapes + marks).joined() + "</svg>\n"
    }

    /// A small picture of a fill, for legends: the same pattern the chart uses.
    static func swatch(_ css: String) -> String {
        "<svg class=\"swatch\" width=\"16\" height=\"11\" aria-hidden=\"true\"><rect class=\"\(css)\" x=\"0.5\" y=\"0.5\" width=\"15\" height=\"10\"/></svg>"
    }

    static func line(_ css: String) -> String {
        "<svg class=\"swatch\" width=\"16\" height=\"11\" aria-hidden=\"true\"><line class=\"\(css)\" x1=\"8\" x2=\"8\" y1=\"0\" y2=\"11\"/></svg>"
    }

    static var legend: String {
        "<p class=\"legend\"><span class=\"what\">Leads per day</span>\(swatch("loaded"))loaded\(swatch("waiting"))waiting in Facebook"
            + "\(swatch("lost"))lost <span class=\"note\">(counted by Facebook per form; spread over the days that lack them)</span><br><span class=\"what\">Connection</span>\(swatch("healthy"))healthy"
            + "\(swatch("reminder"))reminder window (from day 75)\(swatch("void"))void, with its number"
            + "<br><span class=\"what\">Markers</span>\(line("now"))now\(line("recover-by"))recover by: a void period's first leads "
            + "are lost in Facebook\(line("expiry"))authentication ends</p>\n"
    }

    /// Patterns, once per page: hatching tells the fills apart without colour.
    static let patterns = """
        <pattern id="fill-waiting" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">\
        <rect width="5" height="5" fill="#E69F00"/><line x1="0" y1="0" x2="0" y2="5" stroke="#5c3d00" stroke-width="1.6"/></pattern>\
        <pattern id="fill-lost" width="5" height="5" patternUnits="userSpaceOnUse">\
        <rect width="5" height="5" fill="#D55E00"/><path d="M0 0L5 5M5 0L0 5" stroke="#2b1200" stroke-width="1.1"/></pattern>\
        <pattern id="fill-void" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">\
        <rect width="6" height="6" fill="#3a3f47"/><line x1="0" y1="0" x2="0" y2="6" stroke="#8b929c" stroke-width="2"/></pattern>\
        <pattern id="fill-reminder" width="4" height="4" patternUnits="userSpaceOnUse">\
        <rect width="4" height="4" fill="#F0E442"/><circle cx="2" cy="2" r="0.8" fill="#6b6100"/></pattern>
        """

    static let css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2430;margin:24px auto;max-width:1000px;padding:0 16px}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:30px 0 4px}.meta{color:#4d5563;margin:2px 0 8px}.id{color:#5b6473;font-weight:400}
        .headline{margin:6px 0;padding:6px 10px;border-left:5px solid;font-size:15px}
        .headline.needs{border-color:#D55E00;background:#fdf1e8}.headline.healthy{border-color:#009E73;border-left-style:double;background:#edf7f2}
        .attention{margin:4px 0 6px;padding:4px 10px;border-left:5px solid #D55E00;background:#fdf1e8}
        table{border-collapse:collapse;margin:8px 0 4px;width:100%}th,td{border-bottom:1px solid #e3e6eb;padding:4px 8px;text-align:left;white-space:nowrap}
        th{background:#f4f6f8;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
        .status{font-size:12px;border-radius:10px;padding:1px 8px;vertical-align:middle;font-weight:600;border:1px solid}
        .status.healthy{background:#e3f4ec;color:#005c43}.status.reminder_due{background:#fbf6c4;color:#5c5300}.status.void{background:#3a3f47;color:#fff}
        tr.open td,tr.awaiting_backfill td{background:#fdf1e8}tr.partly_lost td{background:#f6f1f4}
        svg.timeline{width:100%;height:auto;display:block;margin:2px 0 6px}svg text{font-size:11px;fill:#4d5563}
        svg.defs{position:absolute}.swatch{vertical-align:-1px;margin:0 2px 0 8px}
        .tick{stroke:#dfe3e8}.grid{stroke:#e9ecf0;stroke-dasharray:2 3}.future{fill:#f3f4f6}
        .loaded{fill:#0072B2}.waiting{fill:url(#fill-waiting)}.lost{fill:url(#fill-lost)}
        .healthy{fill:#009E73}.reminder{fill:url(#fill-reminder)}.void{fill:url(#fill-void)}
        rect.void{stroke:#1d2430;stroke-width:1}.void-label{fill:#fff;font-weight:600}
        .now{stroke:#1d2430;stroke-width:1.5}.recover-by{stroke:#D55E00;stroke-width:2;stroke-dasharray:5 3}.recover-by-mark{fill:#D55E00}
        .expiry{stroke:#1d2430;stroke-width:1.5;stroke-dasharray:1.5 2.5}
        .now-label,.expiry-label{fill:#1d2430}.recover-by-label{fill:#a34700;font-weight:600}
        .legend,.totals-legend{color:#4d5563;margin:4px 0}.totals-legend{margin:6px 0 0}
        .legend{margin:10px 0;padding:6px 10px;background:#f7f8fa;line-height:1.7}.legend .what{display:inline-block;width:118px;font-weight:600}
        .legend .swatch:first-of-type{margin-left:0}.note{font-size:12px}
        """

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ value: Double) -> String { String(format: "%.1f", value) }
}

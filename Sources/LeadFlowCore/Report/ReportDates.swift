import Foundation

/// Dates as the report's readers write them ("20 May", "20 May 2026 09:00"), in the zone
/// they chose (`--tz`). Machine formats (CSV, JSON) keep UTC ISO 8601 instants; these are
/// for the sentences and tables people read. English month names, no locale: the report's
/// words are English, and a golden file must not depend on the machine it was made on.
public struct ReportDates: Sendable, Equatable {
    public let timeZone: TimeZone
    /// The year a date is left without when it falls in it: the report's own year.
    public let referenceYear: Int

    public init(timeZone: TimeZone = TimeZone(secondsFromGMT: 0)!, reference: Date) {
        self.timeZone = timeZone
        referenceYear = Self.localFields(reference, timeZone).year
    }

    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// "UTC", "Europe/Berlin": what the report says its times are in.
    public var zoneName: String {
        ["GMT", "UTC", "Etc/UTC", "Etc/GMT", "Z"].contains(timeZone.identifier) ? "UTC" : timeZone.identifier
    }

    static func localFields(_ date: Date, _ timeZone: TimeZone) -> UTCTime.Fields {
        UTCTime.fields(date.addingTimeInterval(TimeInterval(timeZone.secondsFromGMT(for: date))))
    }

    func fields(_ date: Date) -> UTCTime.Fields { Self.localFields(date, timeZone) }

    /// "20 May", or "20 May 2025" outside the report's year.
    public func day(_ date: Date) -> String {
        let f = fields(date)
        return "\(f.day) \(Self.months[f.month - 1])" + (f.year == referenceYear ? "" : " \(f.year)")
    }

    /// "20 May 2026": tables, where rows of several years sit under each other.
    public func dayWithYear(_ date: Date) -> String {
        let f = fields(date)
        return "\(f.day) \(Self.months[f.month - 1]) \(f.year)"
    }

    /// "20 May 2026 09:00".
    public func dayAndTime(_ date: Date) -> String {
        let f = fields(date)
        return dayWithYear(date) + " " + (f.hour < 10 ? "0" : "") + "\(f.hour):" + (f.minute < 10 ? "0" : "") + "\(f.minute)"
    }

    /// "14–19 Feb", "28 Feb–3 Mar": the days a span of time covers.
    public func range(_ from: Date, _ to: Date) -> String {
        let a = fields(from), b = fields(to)
        if a.year == b.year, a.month == b.month { return a.day == b.day ? day(from) : "\(a.day)–" + day(to) }
        return (a.year == b.year ? "\(a.day) \(Self.months[a.month - 1])" : day(from)) + "–" + day(to)
    }

    /// The local midnight that starts the day holding `date`. The offset is taken again at
    /// that midnight, so a day that changes to or from summer time still starts at 00:00.
    public func startOfDay(_ date: Date) -> Date {
        let f = fields(date)
        let midnight = UTCTime.Fields(year: f.year, month: f.month, day: f.day, hour: 0, minute: 0, second: 0, microsecond: 0)
        let guess = UTCTime.date(midnight, offsetSeconds: timeZone.secondsFromGMT(for: date))
        return UTCTime.date(midnight, offsetSeconds: timeZone.secondsFromGMT(for: guess))
    }

    /// The local midnight after `date`'s day.
    public func startOfNextDay(_ date: Date) -> Date {
        startOfDay(startOfDay(date).addingTimeInterval(36 * 3_600))
    }

    /// The first local midnight of the month after `date`'s.
    public func startOfNextMonth(_ date: Date) -> Date {
        let f = fields(date)
        let next = UTCTime.Fields(year: f.month == 12 ? f.year + 1 : f.year, month: f.month == 12 ? 1 : f.month + 1, day: 1,
                                  hour: 12, minute: 0, second: 0, microsecond: 0)
        return startOfDay(UTCTime.date(next, offsetSeconds: timeZone.secondsFromGMT(for: date)))
    }

    /// Whole days between two instants, rounded down: "44 days" after 44.5.
    public static func wholeDays(_ seconds: TimeInterval) -> Int { Int((seconds / 86_400).rounded(.down)) }

    /// "7 days", "4.5 days", "1 day": a duration for people, to the half day.
    public static func days(_ seconds: TimeInterval) -> String {
        let halves = (seconds / 43_200).rounded()
        let value = halves / 2
        let text = value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
        return text + (value == 1 ? " day" : " days")
    }
}

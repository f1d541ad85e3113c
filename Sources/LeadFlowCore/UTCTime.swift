import Foundation

/// Exact conversions between instants and the UTC calendar, without locale, time zone
/// database or floating-point surprises: Graph timestamps (`2026-11-01T12:34:56+0000`),
/// Postgres `timestamptz` text, and the instants in the database all go through here.
public enum UTCTime {
    /// Calendar fields of an instant, in UTC, with microseconds (Postgres' resolution).
    public struct Fields: Equatable, Sendable {
        public var year, month, day, hour, minute, second, microsecond: Int
    }

    /// Microseconds since 1970-01-01T00:00:00Z, rounded to the nearest microsecond.
    public static func microseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    public static func date(microseconds: Int64) -> Date {
        // Split into whole seconds and a remainder so large instants keep microsecond precision.
        let seconds = microseconds.floorDivided(by: 1_000_000)
        let remainder = microseconds - seconds * 1_000_000
        return Date(timeIntervalSince1970: Double(seconds) + Double(remainder) / 1_000_000)
    }

    public static func fields(_ date: Date) -> Fields {
        let micros = microseconds(date)
        let seconds = micros.floorDivided(by: 1_000_000)
        let days = seconds.floorDivided(by: 86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = civil(fromDays: days)
        return Fields(year: year, month: month, day: day,
                      hour: secondOfDay / 3600, minute: secondOfDay / 60 % 60, second: secondOfDay % 60,
                      microsecond: Int(micros - seconds * 1_000_000))
    }

    /// The instant of calendar fields in UTC plus an offset east of UTC in seconds.
    public static func date(_ f: Fields, offsetSeconds: Int = 0) -> Date {
        let days = daysFromCivil(year: f.year, month: f.month, day: f.day)
        let seconds = days * 86_400 + Int64(f.hour * 3600 + f.minute * 60 + f.second) - Int64(offsetSeconds)
        return date(microseconds: seconds * 1_000_000 + Int64(f.microsecond))
    }

    /// `2026-11-01T12:34:56.123456Z` (fraction only when there is one).
    public static func iso8601(_ date: Date) -> String {
        let f = fields(date)
        var text = pad(f.year, 4) + "-" + pad(f.month, 2) + "-" + pad(f.day, 2) + "T"
            + pad(f.hour, 2) + ":" + pad(f.minute, 2) + ":" + pad(f.second, 2)
        if f.microsecond != 0 { text += "." + pad(f.microsecond, 6) }
        return text + "Z"
    }

    /// Parses the timestamps LeadFlow meets: ISO 8601 with `T` or a space between date
    /// and time, an optional fraction (up to microseconds), and a zone written `Z`, `+00`,
    /// `+0000` (Graph's form, no colon) or `+00:00`. A missing zone is refused: an instant
    /// without one is ambiguous.
    public static func parse(_ text: some StringProtocol) -> Date? {
        let bytes = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int? {
            guard i + width <= bytes.count else { return nil }
            var value = 0
            for k in i..<(i + width) {
                let b = bytes[k]
                guard b >= 48, b <= 57 else { return nil }
                value = value * 10 + Int(b - 48)
            }
            i += width
            return value
        }
        func expect(_ chars: String) -> Bool {
            guard i < bytes.count, chars.utf8.contains(bytes[i]) else { return false }
            i += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
              expect("T "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
              let second = number(2) else { return nil }
        var micro = 0
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 {
                if digits < 6 { micro = micro * 10 + Int(bytes[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 6 { for _ in digits..<6 { micro *= 10 } }
        }
        guard i < bytes.count else { return nil }
        var offset = 0
        if bytes[i] == UInt8(ascii: "Z") {
            i += 1
        } else {
            let sign: Int
            switch bytes[i] {
            case UInt8(ascii: "+"): sign = 1
            case UInt8(ascii: "-"): sign = -1
            default: return nil
            }
            i += 1
            guard let hours = number(2) else { return nil }
            var minutes = 0
            if i < bytes.count {
                if bytes[i] == UInt8(ascii: ":") { i += 1 }
                guard let m = number(2) else { return nil }
                minutes = m
            }
            offset = sign * (hours * 3600 + minutes * 60)
        }
        guard i == bytes.count, (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
              hour < 24, minute < 60, second < 60 else { return nil }
        return date(Fields(year: year, month: month, day: day, hour: hour, minute: minute, second: second,
                           microsecond: micro), offsetSeconds: offset)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    // Howard Hinnant's days_from_civil / civil_from_days: exact proleptic Gregorian arithmetic.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = y.floorDivided(by: 400)
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = z.floorDivided(by: 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }
}

extension Int64 {
    /// Division rounding toward negative infinity (Swift's `/` truncates toward zero).
    func floorDivided(by divisor: Int64) -> Int64 {
        let q = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? q - 1 : q
    }
}

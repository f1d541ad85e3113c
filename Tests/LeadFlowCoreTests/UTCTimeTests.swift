import Foundation
import LeadFlowCore
import Testing

@Suite struct UTCTimeTests {
    @Test func graphCreatedTimeWithoutColonInOffset() throws {
        let date = try #require(UTCTime.parse("2026-11-01T12:34:56+0000"))
        #expect(date.timeIntervalSince1970 == 1_793_536_496)
        #expect(UTCTime.parse("2026-11-01T14:34:56+0200") == date)
        #expect(UTCTime.parse("2026-11-01T07:34:56-05:00") == date)
        #expect(UTCTime.parse("2026-11-01 12:34:56+00") == date)
        #expect(UTCTime.parse("2026-11-01T12:34:56Z") == date)
    }

    @Test func fractionsKeepMicroseconds() throws {
        let date = try #require(UTCTime.parse("2026-11-01 12:34:56.123456+00"))
        #expect(UTCTime.microseconds(date) == 1_793_536_496_123_456)
        #expect(UTCTime.iso8601(date) == "2026-11-01T12:34:56.123456Z")
        #expect(UTCTime.parse("2026-11-01T12:34:56.5Z").map(UTCTime.microseconds) == 1_793_536_496_500_000)
    }

    @Test(arguments: ["2026-11-01T12:34:56", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-01T24:00:00Z",
                      "2026-11-01T12:34:56+00:0", "2026-11-01T12:34:56Zjunk", "", "yesterday"])
    func malformedInstantsAreRefused(text: String) {
        #expect(UTCTime.parse(text) == nil)
    }

    @Test func roundTripAcrossCenturiesAndLeapDays() throws {
        for text in ["1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2100-03-01T00:00:00Z", "1969-12-31T23:59:59Z"] {
            let date = try #require(UTCTime.parse(text))
            #expect(UTCTime.iso8601(date) == text)
        }
    }
}

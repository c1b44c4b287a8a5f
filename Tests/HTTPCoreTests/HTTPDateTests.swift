import Foundation
import IOCore
import Testing

@testable import HTTPCore

@Suite("HTTPDate")
struct HTTPDateTests {
    @Test(arguments: [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),  // RFC 9110's example
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),  // leap day of a 400-year leap year
        (1_709_251_199, "Thu, 29 Feb 2024 23:59:59 GMT"),
        (4_107_456_000, "Sun, 28 Feb 2100 00:00:00 GMT"),  // 2100 is not a leap year...
        (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),  // ...so 1 March follows 28 February
        (2_147_483_647, "Tue, 19 Jan 2038 03:14:07 GMT"),
        (2_147_483_648, "Tue, 19 Jan 2038 03:14:08 GMT"),
        (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
        (-62_135_596_800, "Mon, 01 Jan 0001 00:00:00 GMT"),
    ])
    func knownDates(_ t: Int, _ expected: String) {
        #expect(HTTPDate.string(epochSeconds: t) == expected)
    }

    @Test func matchesPythonFormatdateTable() {
        var checked = 0
        for line in imfFixdateTable.split(separator: "\n") {
            guard let space = line.firstIndex(of: " "), let t = Int(line[..<space]) else {
                Issue.record("bad fixture line \(line)")
                continue
            }
            let expected = String(line[line.index(after: space)...])
            let got = HTTPDate.string(epochSeconds: t)
            if got != expected {
                Issue.record("\(t): \(got) != \(expected)")
            }
            checked += 1
        }
        #expect(checked > 3000)
    }

    @Test func formatWritesExactly29Bytes() {
        let buf = UnsafeMutablePointer<UInt8>.allocate(capacity: 40)
        defer { buf.deallocate() }
        buf.initialize(repeating: 0xEE, count: 40)
        HTTPDate.format(epochSeconds: 1_234_567_890, into: buf)
        #expect(String(decoding: UnsafeBufferPointer(start: buf, count: 29), as: UTF8.self) == "Fri, 13 Feb 2009 23:31:30 GMT")
        #expect(buf[29] == 0xEE)
        #expect(HTTPDate.length == 29)
    }

    @Test func civilAndDaysRoundTrip() {
        #expect(HTTPDate.days(year: 1970, month: 1, day: 1) == 0)
        #expect(HTTPDate.days(year: 2000, month: 3, day: 1) == 11_017)
        #expect(HTTPDate.days(year: 1969, month: 12, day: 31) == -1)
        #expect(HTTPDate.civil(fromDays: 0) == (1970, 1, 1))
        #expect(HTTPDate.civil(fromDays: 11_016) == (2000, 2, 29))
        #expect(HTTPDate.civil(fromDays: -719_162) == (1, 1, 1))
        // Every day from 1 BCE-ish to 4800 CE: civil(days(x)) == x, and consecutive days are
        // consecutive dates.
        var prev = HTTPDate.civil(fromDays: -720_000)
        for z in -719_999...1_100_000 {
            let c = HTTPDate.civil(fromDays: z)
            if HTTPDate.days(year: c.year, month: c.month, day: c.day) != z {
                Issue.record("days(civil(\(z))) mismatch: \(c)")
                break
            }
            let next = c.day == 1 ? (c.month == 1 ? prev.year + 1 == c.year && prev.month == 12 && prev.day == 31 : prev.month + 1 == c.month && prev.year == c.year) : (prev.year == c.year && prev.month == c.month && prev.day + 1 == c.day)
            if !next {
                Issue.record("\(prev) is not followed by \(c)")
                break
            }
            prev = c
        }
    }

    @Test func civilMatchesFoundationCalendar() {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        for _ in 0..<2000 {
            let z = Int.random(in: -100_000...200_000)
            let date = Date(timeIntervalSince1970: Double(z) * 86_400)
            let comps = cal.dateComponents([.year, .month, .day], from: date)
            #expect(HTTPDate.civil(fromDays: z) == (comps.year!, comps.month!, comps.day!))
        }
    }

    @Test func dateCacheReturnsTheCurrentSecond() {
        let cache = DateCache()
        let before = Clock.realtime().seconds
        let got = String(decoding: cache.current(), as: UTF8.self)
        let after = Clock.realtime().seconds
        #expect(got == HTTPDate.string(epochSeconds: before) || got == HTTPDate.string(epochSeconds: after))
        #expect(cache.current().count == 29)
        // Same second: same storage, same bytes.
        let a = cache.current()
        let b = cache.current()
        #expect(a.baseAddress == b.baseAddress)
    }
}


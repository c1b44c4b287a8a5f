import IOCore

/// IMF-fixdate (RFC 9110 §5.6.7) formatting without Foundation: `Sun, 06 Nov 1994 08:49:37 GMT`.
package enum HTTPDate {
    /// Length of every IMF-fixdate.
    package static let length = 29

    /// Writes the date for `epochSeconds` into exactly 29 bytes at `out`.
    package static func format(epochSeconds: Int, into out: UnsafeMutablePointer<UInt8>) {
        let days = epochSeconds >= 0 ? epochSeconds / 86400 : (epochSeconds - 86399) / 86400
        let secs = epochSeconds - days * 86400
        let (y, m, d) = civil(fromDays: days)
        let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
        let wd: StaticString = "SunMonTueWedThuFriSat"
        let mn: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"
        var i = 0
        @inline(__always) func put(_ b: UInt8) { out[i] = b; i += 1 }
        @inline(__always) func two(_ v: Int) { put(UInt8(48 + v / 10)); put(UInt8(48 + v % 10)) }
        for k in 0..<3 { put(wd.utf8Start[weekday * 3 + k]) }
        put(44); put(32)
        two(d); put(32)
        for k in 0..<3 { put(mn.utf8Start[(m - 1) * 3 + k]) }
        put(32)
        two((y / 100) % 100); two(y % 100); put(32)
        two(secs / 3600); put(58); two((secs / 60) % 60); put(58); two(secs % 60)
        put(32); put(71); put(77); put(84)
    }

    /// The date as a String (cold paths, tests).
    package static func string(epochSeconds: Int) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length) { buf in
            format(epochSeconds: epochSeconds, into: buf.baseAddress!)
            return String(decoding: UnsafeBufferPointer(buf), as: UTF8.self)
        }
    }

    /// Howard Hinnant's days-from-civil inverse.
    package static func civil(fromDays z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// Days since the epoch for a civil date.
    package static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }
}

/// A per-thread cache of the current Date header value, refreshed at most once per second.
package final class DateCache {
    private var second = -1
    private let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: HTTPDate.length)

    package init() {}
    deinit { storage.deallocate() }

    /// The current IMF-fixdate (29 bytes), valid until the next call.
    @inline(__always)
    package func current() -> UnsafeRawBufferPointer {
        let now = Clock.realtime().seconds
        if now != second {
            second = now
            HTTPDate.format(epochSeconds: now, into: storage)
        }
        return UnsafeRawBufferPointer(start: storage, count: HTTPDate.length)
    }
}

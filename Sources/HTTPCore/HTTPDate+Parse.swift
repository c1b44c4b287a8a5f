/// Parsing of HTTP dates (RFC 9110 §5.6.7) the way Go's `http.ParseTime` does, which is what
/// Caddy's file server applies to If-Modified-Since, If-Unmodified-Since and If-Range:
///
/// - IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT` (Go's `http.TimeFormat`),
/// - RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` (any zone abbreviation, taken as UTC; two-digit
///   years 69–99 are 19xx, 00–68 are 20xx, as Go's `time.Parse`),
/// - asctime `Sun Nov  6 08:49:37 1994` (ANSIC; the day may be space-padded).
///
/// Day names are checked for spelling but not against the date (Go does not either); fields
/// are range-checked (day within its month). Anything else is nil: callers ignore invalid
/// dates, as RFC 9110 §13.1.3 asks.
extension HTTPDate {
    /// Seconds since the epoch, or nil when `b` is not an HTTP date.
    package static func parse(_ b: UnsafeRawBufferPointer) -> Int? {
        var p = Scanner(b)
        if let t = p.imfFixdate() { return t }
        p = Scanner(b)
        if let t = p.rfc850() { return t }
        p = Scanner(b)
        return p.asctime()
    }

    /// `parse` for Strings (tests).
    package static func parse(_ s: String) -> Int? {
        var s = s
        return s.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    private static let shortDays: [StaticString] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let longDays: [StaticString] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    private static let months: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    private struct Scanner {
        let b: UnsafeRawBufferPointer
        var i = 0
        init(_ b: UnsafeRawBufferPointer) { self.b = b }

        var atEnd: Bool { i == b.count }

        mutating func lit(_ s: StaticString) -> Bool {
            let n = s.utf8CodeUnitCount
            guard i + n <= b.count else { return false }
            for k in 0..<n where b[i + k] != s.utf8Start[k] { return false }
            i += n
            return true
        }

        mutating func oneOf(_ words: [StaticString]) -> Int? {
            for (k, w) in words.enumerated() {
                let save = i
                if lit(w) { return k }
                i = save
            }
            return nil
        }

        /// Exactly `n` digits.
        mutating func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in 0..<n {
                let c = b[i + k]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            i += n
            return v
        }

        /// `hh:mm:ss`.
        mutating func clock() -> Int? {
            guard let h = digits(2), lit(":"), let m = digits(2), lit(":"), let s = digits(2) else { return nil }
            guard h < 24, m < 60, s < 60 else { return nil }
            return h * 3600 + m * 60 + s
        }

        static func epoch(_ y: Int, _ mon: Int, _ d: Int, _ secs: Int) -> Int? {
            guard d >= 1, d <= daysIn(mon, y) else { return nil }
            return HTTPDate.days(year: y, month: mon, day: d) * 86400 + secs
        }

        static func daysIn(_ m: Int, _ y: Int) -> Int {
            switch m {
            case 2: return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28
            case 4, 6, 9, 11: return 30
            default: return 31
            }
        }

        mutating func imfFixdate() -> Int? {
            guard oneOf(HTTPDate.shortDays) != nil, lit(", "), let d = digits(2), lit(" "),
                let mon = oneOf(HTTPDate.months), lit(" "), let y = digits(4), lit(" "), let t = clock(), lit(" GMT"), atEnd
            else { return nil }
            return Scanner.epoch(y, mon + 1, d, t)
        }

        mutating func rfc850() -> Int? {
            guard oneOf(HTTPDate.longDays) != nil, lit(", "), let d = digits(2), lit("-"), let mon = oneOf(HTTPDate.months),
                lit("-"), let yy = digits(2), lit(" "), let t = clock(), lit(" ")
            else { return nil }
            // Go's `MST` element: an upper-case zone abbreviation (3–5 letters), or GMT±h.
            let zs = i
            while i < b.count, b[i] >= 0x41, b[i] <= 0x5A { i += 1 }
            guard i - zs >= 3, i - zs <= 5, atEnd else { return nil }
            return Scanner.epoch(yy >= 69 ? 1900 + yy : 2000 + yy, mon + 1, d, t)
        }

        mutating func asctime() -> Int? {
            guard oneOf(HTTPDate.shortDays) != nil, lit(" "), let mon = oneOf(HTTPDate.months), lit(" ") else { return nil }
            // `_2`: a space-padded or two-digit day.
            var d: Int
            if lit(" ") {
                guard let v = digits(1) else { return nil }
                d = v
            } else if let v = digits(2) {
                d = v
            } else {
                return nil
            }
            guard lit(" "), let t = clock(), lit(" "), let y = digits(4), atEnd else { return nil }
            if d == 0 { d = -1 }
            return Scanner.epoch(y, mon + 1, d, t)
        }
    }
}

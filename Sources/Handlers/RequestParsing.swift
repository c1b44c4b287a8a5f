import HTTPCore
import IOCore

/// Go's `url.ParseQuery` over raw query bytes, without allocating: pairs split on `&`, a pair
/// containing `;` is an error (Go ≥ 1.17), keys and values are `QueryUnescape`d (`+` is a
/// space, a bad `%` escape is an error and drops the pair).
package enum QueryString {
    /// Calls `body` with every valid pair (unescaped key and value, valid during the call).
    /// Returns false when some pair was invalid (ParseQuery's error; the other pairs are still
    /// delivered, as `URL.Query()` does).
    @discardableResult
    package static func forEachPair(_ q: UnsafeRawBufferPointer,
                                    _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> Bool {
        if q.isEmpty { return true }
        var ok = true
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: q.count * 2) { tmp in
            let keyBuf = UnsafeMutableBufferPointer(rebasing: tmp[0..<q.count])
            let valBuf = UnsafeMutableBufferPointer(rebasing: tmp[q.count...])
            var start = 0
            while start < q.count {
                var end = start
                while end < q.count && q[end] != UInt8(ascii: "&") { end += 1 }
                let pairRange = start..<end
                start = end + 1
                if pairRange.isEmpty { continue }
                let pair = UnsafeRawBufferPointer(rebasing: q[pairRange])
                if pair.contains(UInt8(ascii: ";")) {
                    ok = false
                    continue
                }
                var eq = pair.count
                for i in 0..<pair.count where pair[i] == UInt8(ascii: "=") { eq = i; break }
                let rawKey = UnsafeRawBufferPointer(rebasing: pair[0..<eq])
                let rawVal = eq < pair.count ? UnsafeRawBufferPointer(rebasing: pair[(eq + 1)...]) : UnsafeRawBufferPointer(start: nil, count: 0)
                guard let kn = unescape(rawKey, into: keyBuf), let vn = unescape(rawVal, into: valBuf) else {
                    ok = false
                    continue
                }
                body(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: keyBuf[0..<kn])), UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: valBuf[0..<vn])))
            }
        }
        return ok
    }

    /// `QueryUnescape` into `out`; the length, or nil on a malformed escape.
    static func unescape(_ s: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        var i = 0, n = 0
        while i < s.count {
            let c = s[i]
            if c == UInt8(ascii: "%") {
                guard i + 2 < s.count, let h = URLDecoding.hex(s[i + 1]), let l = URLDecoding.hex(s[i + 2]) else { return nil }
                out[n] = h << 4 | l
                i += 3
            } else {
                out[n] = c == UInt8(ascii: "+") ? 0x20 : c
                i += 1
            }
            n += 1
        }
        return n
    }

    /// Appends every value of `key` joined with `,` (Caddy's `{http.request.uri.query.K}`).
    package static func appendValues(of key: String, in q: UnsafeRawBufferPointer, into out: ByteBuffer) {
        var first = true
        _ = withBytes(key) { kb in
            forEachPair(q) { k, v in
                guard k.elementsEqual(kb) else { return }
                if !first { out.append(byte: UInt8(ascii: ",")) }
                out.append(v)
                first = false
            }
        }
    }
}

/// Go's `Request.Cookies` for one name, without allocating.
package enum Cookies {
    @inline(__always)
    static func isTokenByte(_ c: UInt8) -> Bool {
        if c <= 0x20 || c >= 0x7F { return false }
        switch c {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "@"), UInt8(ascii: ","),
            UInt8(ascii: ";"), UInt8(ascii: ":"), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "/"), UInt8(ascii: "["),
            UInt8(ascii: "]"), UInt8(ascii: "?"), UInt8(ascii: "="), UInt8(ascii: "{"), UInt8(ascii: "}"):
            return false
        default: return true
        }
    }

    /// Appends the value of the first cookie named `name` (ASCII case-insensitive, as Caddy
    /// compares with EqualFold); false when there is none.
    package static func appendValue(of name: String, in fields: HTTPFields, into out: ByteBuffer) -> Bool {
        var found = false
        withBytes(name) { nb in
            for i in fields.entries.indices where fields.entries[i].token == .cookie && !found {
                fields.withField(i) { _, v in
                    var start = 0
                    while start < v.count && !found {
                        var end = start
                        while end < v.count && v[end] != UInt8(ascii: ";") { end += 1 }
                        var lo = start, hi = end
                        while lo < hi && (v[lo] == 0x20 || v[lo] == 0x09) { lo += 1 }
                        while hi > lo && (v[hi - 1] == 0x20 || v[hi - 1] == 0x09) { hi -= 1 }
                        start = end + 1
                        var eq = hi
                        for k in lo..<hi where v[k] == UInt8(ascii: "=") { eq = k; break }
                        guard eq < hi, eq > lo else { continue }
                        let cname = UnsafeRawBufferPointer(rebasing: v[lo..<eq])
                        guard cname.allSatisfy(isTokenByte), Template.equalsIgnoringCase(cname, nb) else { continue }
                        var vlo = eq + 1, vhi = hi
                        if vhi - vlo > 1 && v[vlo] == UInt8(ascii: "\"") && v[vhi - 1] == UInt8(ascii: "\"") {
                            vlo += 1
                            vhi -= 1
                        }
                        let value = UnsafeRawBufferPointer(rebasing: v[vlo..<vhi])
                        guard value.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x3B && $0 != 0x5C }) else { continue }
                        out.append(value)
                        found = true
                    }
                }
            }
        }
        return found
    }
}

extension Template {
    /// ASCII case-insensitive comparison of two byte strings.
    static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        ASCII.equalsIgnoringCase(a, b)
    }
}

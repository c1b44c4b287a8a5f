import HTTPCore
import IOCore

/// Caddy's JSON listing: `json.NewEncoder(w).Encode(items)` of Go `fileInfo` values.
enum BrowseJSON {
    /// Go's `fs.FileMode` bits from a `st_mode`.
    static func goFileMode(_ m: UInt32) -> UInt32 {
        var r = m & 0o777
        switch m & UInt32(0o170000) {
        case 0o060000: r |= 1 << 26
        case 0o020000: r |= 1 << 26 | 1 << 21
        case 0o040000: r |= 1 << 31
        case 0o010000: r |= 1 << 25
        case 0o120000: r |= 1 << 27
        case 0o140000: r |= 1 << 24
        default: break
        }
        if m & 0o4000 != 0 { r |= 1 << 23 }
        if m & 0o2000 != 0 { r |= 1 << 22 }
        if m & 0o1000 != 0 { r |= 1 << 20 }
        return r
    }

    static func write(_ items: [BrowseItem], into out: ByteBuffer) {
        out.append(byte: UInt8(ascii: "["))
        for (k, it) in items.enumerated() {
            if k > 0 { out.append(byte: UInt8(ascii: ",")) }
            out.append("{\"name\":")
            string(it.name, out)
            out.append(",\"size\":")
            out.appendDecimal(Int(it.size))
            out.append(",\"url\":")
            let u = ByteBuffer(capacity: it.name.count * 3 + 2)
            (Array("./".utf8) + it.name).withUnsafeBytes { URLEscaping.appendEscapedPath($0, into: u) }
            string(u.readableArray(), out)
            out.append(",\"mod_time\":\"")
            rfc3339Nano(it.mtimeSec, it.mtimeNsec, out)
            out.append("\",\"mode\":")
            out.appendDecimal(Int(it.mode))
            out.append(",\"is_dir\":")
            out.append(it.isDir ? "true" : "false")
            out.append(",\"is_symlink\":")
            out.append(it.isSymlink ? "true" : "false")
            if !it.symlinkPath.isEmpty {
                out.append(",\"symlink_path\":")
                string(it.symlinkPath, out)
            }
            out.append(byte: UInt8(ascii: "}"))
        }
        out.append("]\n")
    }

    /// Go's RFC 3339 with nanoseconds, UTC, trailing zeros of the fraction dropped.
    static func rfc3339Nano(_ sec: Int, _ nsec: Int, _ out: ByteBuffer) {
        let days = sec >= 0 ? sec / 86400 : (sec - 86399) / 86400
        let s = sec - days * 86400
        let (y, m, d) = HTTPDate.civil(fromDays: days)
        func two(_ v: Int) {
            out.append(byte: UInt8(48 + v / 10))
            out.append(byte: UInt8(48 + v % 10))
        }
        two(y / 100 % 100)
        two(y % 100)
        out.append(byte: UInt8(ascii: "-"))
        two(m)
        out.append(byte: UInt8(ascii: "-"))
        two(d)
        out.append(byte: UInt8(ascii: "T"))
        two(s / 3600)
        out.append(byte: UInt8(ascii: ":"))
        two(s / 60 % 60)
        out.append(byte: UInt8(ascii: ":"))
        two(s % 60)
        if nsec > 0 {
            var digits: [UInt8] = []
            var v = nsec
            for _ in 0..<9 {
                digits.append(UInt8(48 + v % 10))
                v /= 10
            }
            digits.reverse()
            while digits.last == UInt8(ascii: "0") { digits.removeLast() }
            out.append(byte: UInt8(ascii: "."))
            out.append(digits)
        }
        out.append(byte: UInt8(ascii: "Z"))
    }

    /// A JSON string as Go's encoder writes it (HTML-safe: `<`, `>`, `&` as `\u00XX`;
    /// U+2028/2029 escaped; invalid UTF-8 as U+FFFD).
    static func string(_ b: [UInt8], _ out: ByteBuffer) {
        let hex: StaticString = "0123456789abcdef"
        out.append(byte: UInt8(ascii: "\""))
        var i = 0
        while i < b.count {
            let c = b[i]
            if c < 0x80 {
                switch c {
                case UInt8(ascii: "\""): out.append("\\\"")
                case UInt8(ascii: "\\"): out.append("\\\\")
                case 0x08: out.append("\\b")
                case 0x0C: out.append("\\f")
                case 0x0A: out.append("\\n")
                case 0x0D: out.append("\\r")
                case 0x09: out.append("\\t")
                case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), 0x00..<0x20:
                    out.append("\\u00")
                    out.append(byte: hex.utf8Start[Int(c >> 4)])
                    out.append(byte: hex.utf8Start[Int(c & 15)])
                default: out.append(byte: c)
                }
                i += 1
                continue
            }
            let n = validUTF8Length(b, i)
            if n == 0 {
                out.append("\\ufffd")
                i += 1
                continue
            }
            if n == 3 && b[i] == 0xE2 && b[i + 1] == 0x80 && (b[i + 2] == 0xA8 || b[i + 2] == 0xA9) {
                out.append(b[i + 2] == 0xA8 ? "\\u2028" : "\\u2029")
            } else {
                for k in 0..<n { out.append(byte: b[i + k]) }
            }
            i += n
        }
        out.append(byte: UInt8(ascii: "\""))
    }

    /// Length of the valid UTF-8 sequence at `i`, or 0.
    static func validUTF8Length(_ b: [UInt8], _ i: Int) -> Int {
        let c = b[i]
        let n: Int
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch c {
        case 0xC2...0xDF: n = 2
        case 0xE0: n = 3; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: n = 3
        case 0xED: n = 3; hi = 0x9F
        case 0xF0: n = 4; lo = 0x90
        case 0xF1...0xF3: n = 4
        case 0xF4: n = 4; hi = 0x8F
        default: return 0
        }
        guard i + n <= b.count else { return 0 }
        if b[i + 1] < lo || b[i + 1] > hi { return 0 }
        for k in 2..<max(2, n) where b[i + k] < 0x80 || b[i + k] > 0xBF { return 0 }
        return n
    }
}

/// Berth's HTML and plain-text listings.
enum BrowseHTML {
    /// No scripts, no external resources: inline styles only.
    static let csp = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"

    static func escape(_ b: [UInt8], _ out: ByteBuffer) {
        for c in b {
            switch c {
            case UInt8(ascii: "&"): out.append("&amp;")
            case UInt8(ascii: "<"): out.append("&lt;")
            case UInt8(ascii: ">"): out.append("&gt;")
            case UInt8(ascii: "\""): out.append("&#34;")
            case UInt8(ascii: "'"): out.append("&#39;")
            default: out.append(byte: c)
            }
        }
    }

    /// go-humanize's IBytes (`1.5 KiB`, `23 MiB`).
    static func humanSize(_ s: Int64) -> String {
        if s < 10 { return "\(s) B" }
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var e = 0
        var v = Double(s)
        while v >= 1024 && e < units.count - 1 {
            v /= 1024
            e += 1
        }
        let r = (v * 10 + 0.5).rounded(.down) / 10
        if r < 10 {
            let tenths = Int((r * 10).rounded())
            return "\(tenths / 10).\(tenths % 10) \(units[e])"
        }
        return "\(Int(r.rounded())) \(units[e])"
    }

    static func dateText(_ sec: Int) -> String {
        let d = HTTPDate.string(epochSeconds: sec)
        // "Sun, 06 Nov 1994 08:49:37 GMT" -> "1994-11-06 08:49:37 UTC"
        let days = sec >= 0 ? sec / 86400 : (sec - 86399) / 86400
        let (y, m, dd) = HTTPDate.civil(fromDays: days)
        let t = d.split(separator: " ")[4]
        func p(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(p(m))-\(p(dd)) \(t) UTC"
    }

    static func write(_ items: [BrowseItem], path: [UInt8], sort: String, order: String, offset: Int, limit: Int,
                      into out: ByteBuffer) {
        out.append("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n")
        out.append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>")
        escape(path, out)
        out.append("</title>\n<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}")
        out.append("table{border-collapse:collapse;min-width:60%}th,td{padding:.3em 1em;text-align:left}")
        out.append("td.size,th.size{text-align:right}tr:nth-child(even){background:#f4f4f4}a{text-decoration:none}")
        out.append("</style>\n</head>\n<body>\n<h1>")
        // Breadcrumbs: each element links to its directory.
        let parts = path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
        out.append("<a href=\"")
        out.append(string: String(repeating: "../", count: parts.count))
        out.append("\">/</a>")
        for (i, part) in parts.enumerated() {
            out.append("<a href=\"")
            out.append(string: String(repeating: "../", count: parts.count - i - 1))
            if i == parts.count - 1 { out.append("./") }
            out.append("\">")
            escape(Array(part), out)
            out.append("/</a>")
        }
        out.append("</h1>\n<table>\n<thead><tr>")
        for (key, label, cls) in [("name", "Name", ""), ("size", "Size", " class=\"size\""), ("time", "Modified", "")] {
            let next = sort == key && order == "asc" ? "desc" : "asc"
            out.append(string: "<th\(cls)><a href=\"?sort=\(key)&amp;order=\(next)\">\(label)")
            if sort == key || (key == "name" && sort == "namedirfirst") { out.append(order == "desc" ? " &#9660;" : " &#9650;") }
            out.append("</a></th>")
        }
        out.append("</tr></thead>\n<tbody>\n")
        if !parts.isEmpty { out.append("<tr><td><a href=\"../\">../</a></td><td class=\"size\">&mdash;</td><td></td></tr>\n") }
        for it in items {
            out.append("<tr><td><a href=\"")
            let u = ByteBuffer(capacity: it.name.count * 3 + 2)
            (Array("./".utf8) + it.name).withUnsafeBytes { URLEscaping.appendEscapedPath($0, into: u) }
            escape(u.readableArray(), out)
            out.append("\">")
            escape(it.name, out)
            out.append("</a>")
            if it.isSymlink { out.append(" &#8599;") }
            out.append("</td><td class=\"size\">")
            out.append(string: it.isDir ? "&mdash;" : humanSize(it.size))
            out.append("</td><td>")
            out.append(string: dateText(it.mtimeSec))
            out.append("</td></tr>\n")
        }
        let dirs = items.filter(\.isDir).count
        out.append("</tbody>\n</table>\n<p>")
        out.append(string: "\(dirs) director\(dirs == 1 ? "y" : "ies"), \(items.count - dirs) file\(items.count - dirs == 1 ? "" : "s")")
        if offset > 0 || limit > 0 { out.append(string: " (offset \(offset), limit \(limit))") }
        out.append("</p>\n</body>\n</html>\n")
    }

    static func writeText(_ items: [BrowseItem], into out: ByteBuffer) {
        out.append("Name\tSize\tModified\n----\t----\t--------\n")
        for it in items {
            out.append(it.name)
            out.append(byte: 0x09)
            out.append(string: humanSize(it.size))
            out.append(byte: 0x09)
            out.append(string: dateText(it.mtimeSec))
            out.append(byte: 0x0A)
        }
    }
}

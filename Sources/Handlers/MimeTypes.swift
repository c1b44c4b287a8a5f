#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// Content types by file extension, exactly as Go's `mime.TypeByExtension` answers Caddy's
/// file server on the same machine (caddy-behavior §11): Go's built-in table, then the
/// system's MIME database — the first readable `globs2` (shared-mime-info; entries kept in
/// weight order), or else every `mime.types` file Go knows. `text/*` types get
/// `; charset=utf-8`. Lookups are case-sensitive first, then on the lower-cased extension.
///
/// A system without any of those files (a minimal container image) gets the embedded
/// `mime.types` list (`MimeTypes+Table.swift`), which is what the official Caddy image has,
/// so `.txt`, `.gz` or `.woff2` keep their types where Go's 17 built-in entries alone would
/// leave them untyped.
///
/// Loaded once, on first use (at config build); lookups allocate nothing.
package final class MimeTypes: Sendable {
    /// The process-wide table.
    package static let shared = MimeTypes(system: true)

    private let exact: ByteTable
    private let lower: ByteTable

    /// Go's `builtinTypesLower` (mime/type.go) as the Go 1.26 runtime of Caddy v2.11.7 has it:
    /// the 17 entries of earlier Go releases (`.ico` now `image/vnd.microsoft.icon`) plus
    /// those a probe of that Caddy binary shows winning over the system database (`.apng`,
    /// `.bin`, `.wav`…). Extensions the system database also lists keep the built-in value.
    static let builtin: [(String, String)] = [
        (".ai", "application/postscript"), (".apng", "image/apng"), (".avif", "image/avif"),
        (".bin", "application/octet-stream"), (".com", "application/octet-stream"), (".css", "text/css; charset=utf-8"),
        (".eps", "application/postscript"), (".exe", "application/octet-stream"), (".gif", "image/gif"),
        (".htm", "text/html; charset=utf-8"), (".html", "text/html; charset=utf-8"), (".ico", "image/vnd.microsoft.icon"),
        (".jfif", "image/jpeg"), (".jpeg", "image/jpeg"), (".jpg", "image/jpeg"), (".js", "text/javascript; charset=utf-8"),
        (".json", "application/json"), (".mjs", "text/javascript; charset=utf-8"), (".pdf", "application/pdf"),
        (".png", "image/png"), (".shtml", "text/html; charset=utf-8"), (".svg", "image/svg+xml"),
        (".text", "text/plain; charset=utf-8"), (".wasm", "application/wasm"), (".wav", "audio/wav"),
        (".webm", "audio/webm"), (".webp", "image/webp"), (".xbl", "text/xml; charset=utf-8"),
        (".xml", "text/xml; charset=utf-8"), (".xsl", "text/xml; charset=utf-8"),
    ]

    static let globFiles = ["/usr/local/share/mime/globs2", "/usr/share/mime/globs2"]
    static let typeFiles = ["/etc/mime.types", "/etc/apache2/mime.types", "/etc/apache/mime.types", "/etc/httpd/conf/mime.types"]

    /// Builds the table; `system: false` uses only the built-in and embedded lists (tests).
    package init(system: Bool) {
        var b = Builder()
        for (k, v) in MimeTypes.builtin {
            b.mixed[k] = v
            b.lower[k] = v
        }
        var loaded = false
        if system {
            for f in MimeTypes.globFiles {
                if let text = MimeTypes.read(f) {
                    b.loadGlobs(text)
                    loaded = true
                    break
                }
            }
            if !loaded {
                for f in MimeTypes.typeFiles {
                    if let text = MimeTypes.read(f) {
                        b.loadTypes(text)
                        loaded = true
                    }
                }
            }
        }
        if !loaded { b.loadTypes(MimeTypes.embeddedMimeTypes.replacingSemicolons()) }
        exact = ByteTable(b.mixed)
        lower = ByteTable(b.lower)
    }

    /// Calls `body` with the type for extension `ext` (with its dot, e.g. `.html`), or returns
    /// nil when the extension has no type.
    package func withType<R>(forExtension ext: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        if ext.isEmpty { return nil }
        if let r = exact.with(ext, body) { return r }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: ext.count) { tmp -> R? in
            for i in 0..<ext.count {
                let c = ext[i]
                tmp[i] = c >= 0x41 && c <= 0x5A ? c | 0x20 : c
            }
            return lower.with(UnsafeRawBufferPointer(tmp), body)
        }
    }

    /// The type for `ext` as a String (config time, tests).
    package func type(forExtension ext: String) -> String? {
        var e = ext
        return e.withUTF8 { withType(forExtension: UnsafeRawBufferPointer($0)) { String(decoding: $0, as: UTF8.self) } }
    }

    /// Go's `filepath.Ext`: the suffix from the last `.` of the final path element, or empty.
    @inline(__always)
    package static func ext(_ path: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var i = path.count - 1
        while i >= 0 && path[i] != UInt8(ascii: "/") {
            if path[i] == UInt8(ascii: ".") { return UnsafeRawBufferPointer(rebasing: path[i...]) }
            i -= 1
        }
        return UnsafeRawBufferPointer(start: nil, count: 0)
    }

    static func read(_ path: String) -> String? {
        guard let bytes = try? FileIO.readAll(path, limit: 16 << 20) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The loading rules of Go's `mime` package (type.go setExtensionType, type_unix.go).
    struct Builder {
        var mixed: [String: String] = [:]
        var lower: [String: String] = [:]

        /// Go's setExtensionType: text types get `charset=utf-8`; invalid types are skipped.
        mutating func set(_ ext: String, _ type: String) {
            guard let value = MimeTypes.normalize(type) else { return }
            mixed[ext] = value
            lower[ext.lowercased()] = value
        }

        /// `weight:type:glob` lines; only `*.ext` globs (and `[…]` classes expanded), the first
        /// (heaviest) entry for an extension wins.
        mutating func loadGlobs(_ text: String) {
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let f = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard f.count >= 3, !f[0].isEmpty, f[2].utf8.count >= 3, !f[0].hasPrefix("#"), f[2].hasPrefix("*.") else {
                    continue
                }
                let ext = String(f[2].dropFirst())
                if ext.contains("?") || ext.contains("*") { continue }
                if ext.contains("[") {
                    for e in MimeTypes.expand(ext) { set(e, f[1]) }
                    continue
                }
                if mixed[ext] != nil { continue }
                set(ext, f[1])
            }
        }

        /// `mime.types` lines: `type ext…`, `#` comments; later entries override.
        mutating func loadTypes(_ text: String) {
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
                guard f.count > 1, !f[0].hasPrefix("#") else { continue }
                for e in f.dropFirst() {
                    if e.hasPrefix("#") { break }
                    set("." + e, f[0])
                }
            }
        }
    }

    /// Go's ParseMediaType check (kept to `type/subtype[; params]` with token characters) and
    /// the charset Go adds to text types; nil when invalid.
    static func normalize(_ type: String) -> String? {
        let parts = type.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)
        let main = parts[0].trimmingSpaces()
        let mt = main.split(separator: "/", omittingEmptySubsequences: false)
        guard mt.count == 2, !mt[0].isEmpty, !mt[1].isEmpty,
            main.utf8.allSatisfy({ isToken($0) || $0 == UInt8(ascii: "/") })
        else { return nil }
        let hasParams = parts.count == 2
        if main.lowercased().hasPrefix("text/") && !(hasParams && parts[1].lowercased().contains("charset")) {
            var out = main.lowercased() + "; charset=utf-8"
            if hasParams {
                let p = parts[1].trimmingSpaces()
                if !p.isEmpty { out = main.lowercased() + "; " + p.lowercased() + "; charset=utf-8" }
            }
            return out
        }
        return type
    }

    static func isToken(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }

    /// Go's `expand` for a glob with one `[…]` class (`.[1-9]` → `.1` … `.9`).
    static func expand(_ glob: String) -> [String] {
        let b = Array(glob.utf8)
        guard let open = b.firstIndex(of: UInt8(ascii: "[")), let close = b[open...].firstIndex(of: UInt8(ascii: "]")),
            close > open + 1, b.allSatisfy({ $0 < 0x80 })
        else { return [] }
        let prefix = Array(b[..<open]), suffix = Array(b[(close + 1)...])
        let r = Array(b[(open + 1)..<close])
        if r.first == UInt8(ascii: "!") { return [] }
        var chars: [UInt8] = []
        var i = 0
        while i < r.count {
            if r[i] != UInt8(ascii: "-") || i == 0 || i == r.count - 1 {
                chars.append(r[i])
                i += 1
                continue
            }
            guard r[i + 1] >= r[i - 1] else { return [] }
            var c = r[i - 1] + 1
            while c <= r[i + 1] {
                if c != UInt8(ascii: "/") { chars.append(c) }
                if c == 255 { break }
                c += 1
            }
            i += 2
        }
        return chars.map { String(decoding: prefix + [$0] + suffix, as: UTF8.self) }
    }
}

/// A read-only byte-string map with open addressing, for allocation-free lookups.
struct ByteTable: Sendable {
    private let keys: [[UInt8]]
    private let values: [[UInt8]]
    private let mask: Int

    init(_ map: [String: String]) {
        var cap = 16
        while cap < map.count * 2 { cap <<= 1 }
        var k = [[UInt8]](repeating: [], count: cap)
        var v = [[UInt8]](repeating: [], count: cap)
        var used = [Bool](repeating: false, count: cap)
        for (key, value) in map {
            let kb = Array(key.utf8)
            var i = kb.withUnsafeBytes { ByteTable.hash($0) } & (cap - 1)
            while used[i] { i = (i + 1) & (cap - 1) }
            used[i] = true
            k[i] = kb
            v[i] = Array(value.utf8)
        }
        keys = k
        values = v
        mask = cap - 1
    }

    @inline(__always)
    static func hash(_ b: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for c in b { h = (h ^ UInt64(c)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h & 0x7fff_ffff_ffff_ffff)
    }

    func with<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        var i = ByteTable.hash(key) & mask
        while true {
            let k = keys[i]
            if k.isEmpty { return nil }
            if k.count == key.count && k.withUnsafeBytes({ memcmp($0.baseAddress!, key.baseAddress!, key.count) == 0 }) {
                return values[i].withUnsafeBytes(body)
            }
            i = (i + 1) & mask
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }

    func replacingSemicolons() -> String {
        String(self.map { $0 == ";" ? "\n" : $0 })
    }
}

import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `encode [<matcher>] [<formats...>] { gzip [<level>]; zstd [<level>]; minimum_length <n>;
    /// match { status …; header … } }` (`encode/caddyfile.go`). Without formats: `zstd gzip`.
    /// The order written is the preference order for equal q-values.
    static func encode(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        var spec = EncodeSpec()
        let args = d.remainingArgs()
        var prefer: [ContentCoding] = []
        let nesting = d.nesting
        func coding(_ name: String, _ d: inout Dispenser) throws(CaddyfileError) -> ContentCoding {
            guard let c = ContentCoding(rawValue: name) else {
                throw d.err("finding encoder module '\(name)': module not registered: http.encoders.\(name)")
            }
            return c
        }
        while d.nextBlock(nesting) {
            switch d.val {
            case "minimum_length":
                guard d.nextArg() else { throw d.argErr() }
                guard let n = GoStrconv.atoi(d.val) else { throw d.err("strconv.Atoi: parsing \"\(d.val)\": invalid syntax") }
                spec.minimumLength = n
            case "match":
                spec.match = try parseResponseMatcher(&d)
            default:
                let c = try coding(d.val, &d)
                let inner = d.nesting
                if c == .gzip {
                    if d.nextArg() {
                        guard let level = GoStrconv.atoi(d.val) else { throw d.err("strconv.Atoi: parsing \"\(d.val)\": invalid syntax") }
                        // Caddy: 0 means the default (5); zlib takes 1…9.
                        guard (0...9).contains(level) else { throw d.err("quality too high; must be <= 9") }
                        spec.gzipLevel = level == 0 ? nil : level
                    }
                } else {
                    if d.nextArg() { spec.zstdLevel = try zstdLevel(d.val, &d) }
                    while d.nextBlock(inner) {
                        switch d.val {
                        case "level":
                            guard d.nextArg() else { throw d.argErr() }
                            spec.zstdLevel = try zstdLevel(d.val, &d)
                        default:
                            throw d.err("unknown subdirective '\(d.val)'")
                        }
                    }
                }
                if prefer.contains(c) { throw d.err("encoder already added: \(c.rawValue)") }
                prefer.append(c)
            }
        }
        var list = args
        if prefer.isEmpty && list.isEmpty { list = ["zstd", "gzip"] }
        for a in list {
            let c = try coding(a, &d)
            if prefer.contains(c) { throw d.err("encoder already added: \(c.rawValue)") }
            prefer.append(c)
        }
        spec.codings = prefer
        site.addRoute("encode", matcher: m, handlers: [.spec(spec)])
    }

    /// Caddy's zstd levels (klauspost speeds) mapped to libzstd levels.
    static func zstdLevel(_ s: String, _ d: inout Dispenser) throws(CaddyfileError) -> String {
        guard EncodeSpec.zstdLevels[s] != nil else { throw d.err("unknown zstd encoder level: \(s)") }
        return s
    }
}

/// Caddy's `encode` handler as configured.
package struct EncodeSpec: HandlerSpec {
    package var codings: [ContentCoding] = [.zstd, .gzip]
    package var minimumLength: Int? = nil
    package var match: ResponseMatcherSpec? = nil
    package var gzipLevel: Int? = nil
    package var zstdLevel: String? = nil

    static let zstdLevels: [String: Int32] = ["fastest": 1, "default": 3, "better": 7, "best": 11]

    package var handlerName: String { "encode" }
    package var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        o.append(("encodings", .object(codings.sorted { $0.rawValue < $1.rawValue }.map { c in
            var e: [(String, JSONValue)] = []
            if c == .gzip, let l = gzipLevel { e.append(("level", .int(l))) }
            if c == .zstd, let l = zstdLevel { e.append(("level", .string(l))) }
            return (c.rawValue, .object(e))
        })))
        if let m = match { o.append(("match", m.json)) }
        if let n = minimumLength { o.append(("minimum_length", .int(n))) }
        o.append(("prefer", .array(codings.map { .string($0.rawValue) })))
        return o
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        EncodeHandler(EncodeHandler.Settings(
            codings: codings, minimumLength: (minimumLength ?? 0) == 0 ? 512 : minimumLength!, match: match?.matcher,
            gzipLevel: Int32(gzipLevel ?? 5), zstdLevel: EncodeSpec.zstdLevels[zstdLevel ?? "default"] ?? 3))
    }
}

// MARK: Berth's JSON

extension EncodeSpec {
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        var spec = EncodeSpec()
        guard let enc = try r.object("encodings") else { throw r.missing("encodings") }
        for k in enc.keys {
            guard let c = ContentCoding(rawValue: k) else { throw enc.error(k, "unknown encoder (gzip, zstd)") }
            guard let o = try enc.object(k) else { continue }
            switch c {
            case .gzip:
                if let l = try o.int("level") {
                    guard (0...9).contains(l) else { throw o.error("level", "gzip level must be 0…9") }
                    spec.gzipLevel = l == 0 ? nil : l
                }
            default:
                if let l = try o.string("level") {
                    guard EncodeSpec.zstdLevels[l] != nil else { throw o.error("level", "unknown zstd encoder level: \(l)") }
                    spec.zstdLevel = l
                }
            }
            try o.finish()
        }
        try enc.finish()
        if let m = try r.object("match") { spec.match = try ResponseMatcherSpec.decode(m) }
        spec.minimumLength = try r.int("minimum_length")
        let prefer = try r.strings("prefer") ?? enc.keys
        var codings: [ContentCoding] = []
        for p in prefer {
            guard let c = ContentCoding(rawValue: p), enc.has(p), !codings.contains(c) else {
                throw r.error("prefer", "must list the keys of encodings, each once")
            }
            codings.append(c)
        }
        guard codings.count == enc.keys.count else { throw r.error("prefer", "must list the keys of encodings, each once") }
        spec.codings = codings
        return spec
    }
}

import JSON
import Caddyfile
import Handlers
import HTTPCore

/// Request matcher specs and their Caddyfile parsers (`modules/caddyhttp/matchers.go`,
/// `ip_matchers.go`, `fileserver/matcher.go`). Each parser gets a dispenser over every
/// segment of its matcher in one set (Caddy concatenates them) and loops with `while d.next()`.
enum MatcherSpecParsers {
    /// `[<name>] <field> <regexp>` of `header_regexp` / `vars_regexp`: the capture name defaults
    /// to the matcher set's (`@name`).
    static func namedFieldPattern(_ d: inout Dispenser) throws(CaddyfileError) -> (name: String, field: String, pattern: String) {
        let args = d.remainingArgs()
        switch args.count {
        case 2: return (d.context["matcher_name"] ?? "", args[0], args[1])
        case 3: return (args[0].isEmpty ? d.context["matcher_name"] ?? "" : args[0], args[1], args[2])
        default: throw d.argErr()
        }
    }

    static func path(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var args: [String] = []
        while d.next() {
            while d.nextArg() { args.append(d.val) }
            if d.nextBlock(d.nesting) { throw d.err("malformed path matcher: blocks are not supported") }
        }
        if args.isEmpty { throw d.argErr() }
        return PathMatcherSpec(args)
    }

    static func host(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var args: [String] = []
        while d.next() {
            while d.nextArg() { args.append(d.val.lowercased()) }
            if d.nextBlock(d.nesting) { throw d.err("malformed host matcher: blocks are not supported") }
        }
        if args.isEmpty { throw d.argErr() }
        return HostMatcherSpec(args)
    }

    static func method(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var args: [String] = []
        while d.next() {
            args += d.remainingArgs()
            if d.nextBlock(d.nesting) { throw d.err("malformed method matcher: blocks are not supported") }
        }
        if args.isEmpty { throw d.argErr() }
        return MethodMatcherSpec(methods: args)
    }

    static func header(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var spec = HeaderMatcherSpec()
        while d.next() {
            guard d.nextArg() else { throw d.err("malformed header matcher: expected field") }
            let field = d.val
            if field.hasPrefix("!") {
                if field.utf8.count == 1 { throw d.err("malformed header matcher: must have field name following ! character") }
                spec.add(String(field.dropFirst()), nil)
                if d.nextArg() { throw d.err("malformed header matcher: null matching headers cannot have a field value") }
            } else {
                guard d.nextArg() else { throw d.err("malformed header matcher: expected both field and value") }
                spec.add(HeaderHandler.canonical(field), d.val)
            }
            if d.nextBlock(d.nesting) { throw d.err("malformed header matcher: blocks are not supported") }
        }
        return spec
    }

    static func headerRegexp(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var spec = HeaderRegexpMatcherSpec()
        while d.next() {
            let (name, field, pattern) = try namedFieldPattern(&d)
            if spec.fields.contains(where: { $0.field == field }) {
                throw d.err("header_regexp matcher can only be used once per named matcher, per header field: \(field)")
            }
            spec.fields.append((field, name, try compile(pattern, &d)))
            if d.nextBlock(d.nesting) { throw d.err("malformed header_regexp matcher: blocks are not supported") }
        }
        return spec
    }

    static func pathRegexp(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var spec: PathRegexpMatcherSpec? = nil
        while d.next() {
            if spec != nil { throw d.err("regular expression can only be used once per named matcher") }
            let args = d.remainingArgs()
            var name = "", pattern = ""
            switch args.count {
            case 1: pattern = args[0]
            case 2: name = args[0]; pattern = args[1]
            default: throw d.argErr()
            }
            if name.isEmpty { name = d.context["matcher_name"] ?? "" }
            spec = PathRegexpMatcherSpec(name: name, regex: try compile(pattern, &d))
            if d.nextBlock(d.nesting) { throw d.err("malformed path_regexp matcher: blocks are not supported") }
        }
        guard let spec else { throw d.argErr() }
        return spec
    }

    static func compile(_ pattern: String, _ d: inout Dispenser) throws(CaddyfileError) -> Regex {
        do {
            return try Regex(pattern)
        } catch {
            throw d.err("compiling matcher regexp \(pattern): \(error.description)")
        }
    }

    static func query(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var spec = QueryMatcherSpec()
        while d.next() {
            for q in d.remainingArgs() where !q.isEmpty {
                guard let eq = q.firstIndex(of: "=") else {
                    throw d.err("malformed query matcher token: \(d.val); must be in param=val format")
                }
                spec.add(String(q[..<eq]), String(q[q.index(after: eq)...]))
            }
            if d.nextBlock(d.nesting) { throw d.err("malformed query matcher: blocks are not supported") }
        }
        return spec
    }

    static func proto(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var p = ""
        while d.next() {
            guard d.nextArg() else { throw d.err("expected exactly one protocol") }
            p = d.val
            if d.nextArg() { throw d.err("expected exactly one protocol") }
        }
        return ProtocolMatcherSpec(proto: p)
    }

    static let privateRanges = ["192.168.0.0/16", "172.16.0.0/12", "10.0.0.0/8", "127.0.0.1/8", "fd00::/8", "::1"]

    static func ip(_ name: String) -> MatcherParser {
        { (d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec in
            var ranges: [String] = []
            while d.next() {
                while d.nextArg() {
                    if d.val == "forwarded" && name == "remote_ip" {
                        throw d.err("the 'forwarded' option is no longer supported; use the 'client_ip' matcher instead")
                    }
                    if d.val == "private_ranges" { ranges += privateRanges; continue }
                    guard IPPrefix(d.val) != nil else {
                        throw d.err("invalid IP address: '\(d.val)'")
                    }
                    ranges.append(d.val)
                }
                if d.nextBlock(d.nesting) { throw d.err("malformed \(name) matcher: blocks are not supported") }
            }
            return IPMatcherSpec(name: name, ranges: ranges)
        }
    }

    static func not(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var sets: [[any MatcherSpec]] = []
        while d.next() {
            sets.append(try MatcherParsers.parseSet(&d, matcherName: d.context["matcher_name"] ?? ""))
        }
        return NotMatcherSpec(sets: sets)
    }

    static func file(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var spec = FileMatcherSpec()
        while d.next() {
            spec.tryFiles += d.remainingArgs()
            let nesting = d.nesting
            while d.nextBlock(nesting) {
                switch d.val {
                case "root":
                    guard d.nextArg() else { throw d.argErr() }
                    spec.root = d.val
                case "try_files":
                    spec.tryFiles += d.remainingArgs()
                    if spec.tryFiles.isEmpty { throw d.argErr() }
                case "try_policy":
                    guard d.nextArg() else { throw d.argErr() }
                    guard ["first_exist", "first_exist_fallback"].contains(d.val) else {
                        throw d.err("try_policy '\(d.val)' is not supported by this Berth build yet (first_exist, first_exist_fallback)")
                    }
                    spec.tryPolicy = d.val
                case "split_path":
                    spec.splitPath += d.remainingArgs()
                    if spec.splitPath.isEmpty { throw d.argErr() }
                default:
                    throw d.err("unrecognized subdirective: \(d.val)")
                }
            }
        }
        return spec
    }
}

package struct MethodMatcherSpec: MatcherSpec {
    package var methods: [String]
    package var matcherName: String { "method" }
    package var json: JSONValue { .array(methods.map { .string($0) }) }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher { MethodMatcher(methods) }
}

package struct HeaderMatcherSpec: MatcherSpec {
    /// Fields in insertion order; nil values: the field must be absent.
    package var fields: [(String, [String]?)] = []
    mutating func add(_ field: String, _ value: String?) {
        if let i = fields.firstIndex(where: { $0.0 == field }) {
            if let v = value { fields[i].1 = (fields[i].1 ?? []) + [v] } else { fields[i].1 = nil }
        } else {
            fields.append((field, value.map { [$0] }))
        }
    }
    package var matcherName: String { "header" }
    package var json: JSONValue {
        .object(fields.sorted { $0.0 < $1.0 }.map { ($0.0, $0.1.map { .array($0.map { .string($0) }) } ?? .null) })
    }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher {
        HeaderMatcher(fields.map { HeaderFieldCondition(name: $0.0, patterns: $0.1.map { $0.map(HeaderValuePattern.init) }) })
    }
}

package struct HeaderRegexpMatcherSpec: MatcherSpec {
    package var fields: [(field: String, name: String, regex: Regex)] = []
    package var matcherName: String { "header_regexp" }
    package var json: JSONValue {
        .object(fields.sorted { $0.field < $1.field }.map { f in
            var o: [(String, JSONValue)] = []
            if !f.name.isEmpty { o.append(("name", .string(f.name))) }
            o.append(("pattern", .string(f.regex.pattern)))
            return (HeaderHandler.canonical(f.field), .object(o))
        })
    }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher {
        HeaderRegexpMatcher(fields: fields.map { ($0.field, $0.regex) }, name: fields.first?.name ?? "")
    }
}

package struct PathRegexpMatcherSpec: MatcherSpec {
    package var name: String
    package var regex: Regex
    package var matcherName: String { "path_regexp" }
    package var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if !name.isEmpty { o.append(("name", .string(name))) }
        o.append(("pattern", .string(regex.pattern)))
        return .object(o)
    }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher { PathRegexpMatcher(regex, name: name) }
}

package struct QueryMatcherSpec: MatcherSpec {
    package var pairs: [(String, [String])] = []
    mutating func add(_ k: String, _ v: String) {
        if let i = pairs.firstIndex(where: { $0.0 == k }) { pairs[i].1.append(v) } else { pairs.append((k, [v])) }
    }
    package var matcherName: String { "query" }
    package var json: JSONValue { .object(pairs.sorted { $0.0 < $1.0 }.map { ($0.0, .array($0.1.map { .string($0) })) }) }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher { QueryMatcher(pairs) }
}

package struct ProtocolMatcherSpec: MatcherSpec {
    package var proto: String
    package var matcherName: String { "protocol" }
    package var json: JSONValue { .string(proto) }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher { ProtocolMatcher(proto) }
}

package struct IPMatcherSpec: MatcherSpec {
    package var name: String
    package var ranges: [String]
    package var matcherName: String { name }
    package var json: JSONValue { .object([("ranges", .array(ranges.map { .string($0) }))]) }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher {
        name == "client_ip" ? ClientIPMatcher(ranges.compactMap(IPPrefix.init)) : RemoteIPMatcher(ranges.compactMap(IPPrefix.init))
    }
}

package struct NotMatcherSpec: MatcherSpec {
    package var sets: [[any MatcherSpec]]
    package var matcherName: String { "not" }
    package var json: JSONValue { .array(sets.map { set in .object(set.map { ($0.matcherName, $0.json) }) }) }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher {
        var built: [[any RequestMatcher]] = []
        for set in sets { built.append(try set.map { m throws(ConfigError) in try m.build(context) }) }
        return NotMatcher(built)
    }
}

/// Caddy's `file` matcher (also what `try_files` compiles to).
package struct FileMatcherSpec: FailingMatcherSpec {
    package var root: String? = nil
    package var tryFiles: [String] = []
    package var tryPolicy: String? = nil
    /// `split_path`: a candidate is cut after the first of these that ends a path segment
    /// (`/index.php/x` → `/index.php`, remainder `/x`).
    package var splitPath: [String] = []
    package var matcherName: String { "file" }
    package var canFail: Bool { tryFiles.contains { FileMatcherSpec.statusCode($0) != nil } }
    package var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if let r = root { o.append(("root", .string(r))) }
        if !tryFiles.isEmpty { o.append(("try_files", .array(tryFiles.map { .string($0) }))) }
        if let p = tryPolicy { o.append(("try_policy", .string(p))) }
        if !splitPath.isEmpty { o.append(("split_path", .array(splitPath.map { .string($0) }))) }
        return .object(o)
    }

    /// `=NNN` (Caddy's parseErrorCode: 100–999), else nil.
    static func statusCode(_ s: String) -> Int? {
        guard s.hasPrefix("="), s.utf8.count > 1, let n = Int(s.dropFirst()), (100...999).contains(n) else { return nil }
        return n
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher {
        let files = tryFiles.isEmpty ? ["{http.request.uri.path}"] : tryFiles
        let candidates: [FileMatcher.Candidate] = files.map { f in
            if let code = FileMatcherSpec.statusCode(f) { return .status(code) }
            return .file(Template(f, keepUnknown: false, environment: context.environment), trailingSlash: f.hasSuffix("/"))
        }
        let rootT = root.map { Template($0, keepUnknown: false, environment: context.environment) }
        return FileMatcher(root: rootT, candidates: candidates, fallback: tryPolicy == "first_exist_fallback",
                           splitPath: splitPath.map { Array($0.utf8) })
    }
}

// MARK: Berth's JSON

enum MatcherSpecDecoders {
    static func method(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        MethodMatcherSpec(methods: try JSONRead.strings(v, p))
    }

    static func header(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        let r = try JSONObjectReader(v, p)
        var spec = HeaderMatcherSpec()
        for k in r.keys {
            guard let fv = r.value(k) else { continue }
            if case .null = fv {
                spec.fields.append((k, nil))
            } else {
                spec.fields.append((k, try JSONRead.strings(fv, p.key(k))))
            }
        }
        return spec
    }

    static func regex(_ pattern: String, _ p: JSONPath) throws(ConfigError) -> Regex {
        do { return try Regex(pattern) } catch { throw p.error("compiling matcher regexp \(pattern): \(error.description)") }
    }

    static func headerRegexp(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        let r = try JSONObjectReader(v, p)
        var spec = HeaderRegexpMatcherSpec()
        for k in r.keys {
            guard let o = try r.object(k) else { continue }
            let name = try o.string("name") ?? ""
            guard let pattern = try o.string("pattern") else { throw o.missing("pattern") }
            try o.finish()
            spec.fields.append((k, name, try regex(pattern, o.path.key("pattern"))))
        }
        return spec
    }

    static func pathRegexp(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        let o = try JSONObjectReader(v, p)
        let name = try o.string("name") ?? ""
        guard let pattern = try o.string("pattern") else { throw o.missing("pattern") }
        try o.finish()
        return PathRegexpMatcherSpec(name: name, regex: try regex(pattern, p.key("pattern")))
    }

    static func query(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        let r = try JSONObjectReader(v, p)
        var spec = QueryMatcherSpec()
        for k in r.keys { spec.pairs.append((k, try r.strings(k) ?? [])) }
        return spec
    }

    static func proto(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        ProtocolMatcherSpec(proto: try JSONRead.string(v, p))
    }

    static func ip(_ name: String) -> MatcherDecoder {
        { (v: JSONValue, p: JSONPath) throws(ConfigError) -> any MatcherSpec in
            let o = try JSONObjectReader(v, p)
            let ranges = try o.strings("ranges") ?? []
            try o.finish()
            for (i, r) in ranges.enumerated() where IPPrefix(r) == nil {
                throw p.key("ranges").index(i).error("invalid IP address: '\(r)'")
            }
            return IPMatcherSpec(name: name, ranges: ranges)
        }
    }

    static func not(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        var sets: [[any MatcherSpec]] = []
        for (e, ep) in try JSONRead.array(v, p) { sets.append(try JSONConfigDecoder.matcherSet(e, ep)) }
        return NotMatcherSpec(sets: sets)
    }

    static func file(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        let o = try JSONObjectReader(v, p)
        var spec = FileMatcherSpec()
        spec.root = try o.string("root")
        spec.tryFiles = try o.strings("try_files") ?? []
        spec.tryPolicy = try o.choice("try_policy", ["first_exist", "first_exist_fallback"])
        spec.splitPath = try o.strings("split_path") ?? []
        try o.finish()
        return spec
    }
}

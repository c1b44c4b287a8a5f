import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `header [<matcher>] [[+|-|?|>]<field> [<value>|<find>] [<replace>]] { … }`
    /// (`headers/caddyfile.go`): one line or a block of fields, plus `defer` and
    /// `match { status …; header … }`. `?Field` operations go into a second handler that only
    /// applies when the field is absent, like Caddy.
    static func header(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        var main = HeaderSpec()
        var withRequire = HeaderSpec()
        var hasArgs = false
        if d.nextArg() {
            hasArgs = true
            let field = d.val
            var value = ""
            var replacement: String? = nil
            if d.nextArg() { value = d.val }
            if d.nextArg() { replacement = d.val }
            try main.apply(field: field, value: value, replacement: replacement, &d)
            if !main.ops.delete.isEmpty { main.deferred = true }
        }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            var field = d.val
            if field == "defer" {
                main.deferred = true
                continue
            }
            if field == "match" {
                main.require = try parseResponseMatcher(&d)
                continue
            }
            if hasArgs { throw d.err("cannot specify headers in both arguments and block") }
            if field.hasSuffix(":") { field.removeLast() }
            var value = ""
            var replacement: String? = nil
            if d.nextArg() { value = d.val }
            if d.nextArg() { replacement = d.val }
            if field.hasPrefix("?") {
                try withRequire.apply(field: field, value: value, replacement: replacement, &d)
            } else {
                try main.apply(field: field, value: value, replacement: replacement, &d)
            }
        }
        if !main.isEmpty { site.addRoute("header", matcher: m, handlers: [.spec(main)]) }
        if !withRequire.isEmpty { site.addRoute("header", matcher: m, handlers: [.spec(withRequire)]) }
    }

    /// `match { status 2xx 404; header Field [value] }` or `match status 200` (Caddy's
    /// ParseNamedResponseMatcher). The dispenser is on `match`.
    static func parseResponseMatcher(_ d: inout Dispenser) throws(CaddyfileError) -> ResponseMatcherSpec {
        var spec = ResponseMatcherSpec()
        let nesting = d.nesting
        while d.nextArg() || d.nextBlock(nesting) {
            switch d.val {
            case "header":
                guard d.nextArg() else { throw d.err("malformed header matcher: expected field") }
                let field = d.val
                if field.hasPrefix("!") {
                    spec.headers.append((String(field.dropFirst()), nil))
                    if d.nextArg() { throw d.err("malformed header matcher: null matching headers cannot have a field value") }
                } else {
                    guard d.nextArg() else { throw d.err("malformed header matcher: expected both field and value") }
                    let canon = HeaderHandler.canonical(field)
                    if let i = spec.headers.firstIndex(where: { $0.0 == canon }) {
                        spec.headers[i].1 = (spec.headers[i].1 ?? []) + [d.val]
                    } else {
                        spec.headers.append((canon, [d.val]))
                    }
                }
            case "status":
                let args = d.remainingArgs()
                if args.isEmpty { throw d.argErr() }
                for var a in args {
                    if a.utf8.count == 3 && a.hasSuffix("xx") { a = String(a.prefix(1)) }
                    guard let n = GoStrconv.atoi(a) else { throw d.err("bad status value '\(a)'") }
                    spec.statusCodes = (spec.statusCodes ?? []) + [n]
                }
            default:
                throw d.err("unrecognized response matcher \(d.val)")
            }
        }
        return spec
    }
}

/// A response matcher as configured (`status`, `header`).
package struct ResponseMatcherSpec: Sendable {
    package var statusCodes: [Int]? = nil
    package var headers: [(String, [String]?)] = []
    package var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if !headers.isEmpty {
            o.append(("headers", .object(headers.sorted { $0.0 < $1.0 }.map { ($0.0, $0.1.map { .array($0.map { .string($0) }) } ?? .null) })))
        }
        if let s = statusCodes { o.append(("status_code", .array(s.map { .int($0) }))) }
        return .object(o)
    }
    package var matcher: ResponseMatcher {
        ResponseMatcher(statusCodes: statusCodes,
                        headers: headers.map { HeaderFieldCondition(name: $0.0, patterns: $0.1.map { $0.map(HeaderValuePattern.init) }) })
    }
}

/// Caddy's `headers` handler: response operations (`header`) and/or request operations
/// (`request_header`).
package struct HeaderSpec: HandlerSpec {
    package struct Ops: Sendable {
        package var add: [(String, [String])] = []
        package var set: [(String, [String])] = []
        package var delete: [String] = []
        package var replace: [(String, [(find: String, replace: String)])] = []
    }
    /// Response operations.
    package var ops = Ops()
    /// False for a handler with request operations only (`request_header`).
    package var hasResponse = true
    /// Request operations (`request_header`), nil when none.
    package var request: Ops? = nil
    package var deferred = false
    package var require: ResponseMatcherSpec? = nil

    var isEmpty: Bool {
        ops.add.isEmpty && ops.set.isEmpty && ops.delete.isEmpty && ops.replace.isEmpty && !deferred && require == nil
    }

    /// Caddy's applyHeaderOp for response headers.
    mutating func apply(field: String, value: String, replacement: String?, _ d: inout Dispenser) throws(CaddyfileError) {
        if field.hasPrefix("+") {
            let f = HeaderHandler.canonical(String(field.dropFirst()))
            if let i = ops.add.firstIndex(where: { $0.0 == f }) { ops.add[i].1.append(value) } else { ops.add.append((f, [value])) }
        } else if field.hasPrefix("-") {
            ops.delete.append(String(field.dropFirst()))
            deferred = true
        } else if field.hasPrefix("?") {
            let f = String(field.dropFirst())
            var r = require ?? ResponseMatcherSpec()
            r.headers.append((f, nil))
            require = r
            setField(HeaderHandler.canonical(f), value)
        } else if let repl = replacement {
            if field.hasPrefix(">") { deferred = true }
            var f = Substring(field)
            while let c = f.first, "+-?>".contains(c) { f = f.dropFirst() }
            let name = String(f)
            if !Self.containsPlaceholders(value) {
                do { _ = try Regex(value) } catch {
                    throw d.err("replacement 0 for header field '\(name)': \(error.description)")
                }
            }
            if let i = ops.replace.firstIndex(where: { $0.0 == name }) {
                ops.replace[i].1.append((value, repl))
            } else {
                ops.replace.append((name, [(value, repl)]))
            }
        } else if field.hasPrefix(">") {
            setField(HeaderHandler.canonical(String(field.dropFirst())), value)
            deferred = true
        } else {
            setField(HeaderHandler.canonical(field), value)
        }
    }

    mutating func setField(_ f: String, _ value: String) {
        if let i = ops.set.firstIndex(where: { $0.0 == f }) { ops.set[i].1 = [value] } else { ops.set.append((f, [value])) }
    }

    /// Caddy's containsPlaceholders: a `{` followed later by a non-empty `…}`.
    static func containsPlaceholders(_ s: String) -> Bool {
        guard let open = s.firstIndex(of: "{") else { return false }
        let after = s[s.index(after: open)...]
        guard let close = after.firstIndex(of: "}") else { return false }
        return close > after.startIndex
    }

    package var handlerName: String { "headers" }

    /// Caddy's `HeaderOps` JSON members (add, set, delete, replace; Go's key order).
    static func opsJSON(_ ops: Ops) -> [(String, JSONValue)] {
        var r: [(String, JSONValue)] = []
        func hdr(_ list: [(String, [String])]) -> JSONValue {
            .object(list.sorted { $0.0 < $1.0 }.map { ($0.0, .array($0.1.map { .string($0) })) })
        }
        if !ops.add.isEmpty { r.append(("add", hdr(ops.add))) }
        if !ops.set.isEmpty { r.append(("set", hdr(ops.set))) }
        if !ops.delete.isEmpty { r.append(("delete", .array(ops.delete.map { .string($0) }))) }
        if !ops.replace.isEmpty {
            r.append(("replace", .object(ops.replace.sorted { $0.0 < $1.0 }.map { f in
                (f.0, .array(f.1.map { .object([("search_regexp", .string($0.find)), ("replace", .string($0.replace))]) }))
            })))
        }
        return r
    }

    package var jsonFields: [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        if let req = request { out.append(("request", .object(Self.opsJSON(req)))) }
        if hasResponse {
            var r = Self.opsJSON(ops)
            if let req = require { r.append(("require", req.json)) }
            if deferred { r.append(("deferred", .bool(true))) }
            out.append(("response", .object(r)))
        }
        return out
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        return HeaderHandler(ops: hasResponse ? try Self.compile(ops, context) : nil, deferred: deferred,
                             require: require?.matcher, requestOps: try request.map { ops throws(ConfigError) in try Self.compile(ops, context) })
    }

    static func compile(_ ops: Ops, _ context: BuildContext) throws(ConfigError) -> HeaderHandler.Ops {
        func t(_ s: String) -> Template { Template(s, keepUnknown: true, environment: context.environment) }
        var o = HeaderHandler.Ops()
        o.add = ops.add.flatMap { f in f.1.map { (HeaderHandler.FieldName(f.0), t($0)) } }
        o.set = ops.set.map { (HeaderHandler.FieldName($0.0), $0.1.map(t)) }
        o.delete = ops.delete
        for (field, reps) in ops.replace {
            for r in reps {
                var regex: Regex? = nil
                var regexTemplate: Template? = nil
                if HeaderSpec.containsPlaceholders(r.find) {
                    regexTemplate = t(r.find)
                } else {
                    do { regex = try Regex(r.find) } catch {
                        throw ConfigError("replacement for header field '\(field)': \(error.description)")
                    }
                }
                o.replace.append(HeaderHandler.Replacement(
                    field: field == "*" ? nil : HeaderHandler.FieldName(field), regex: regex, regexTemplate: regexTemplate,
                    search: nil, replace: t(r.replace)))
            }
        }
        return o
    }
}

// MARK: Berth's JSON

extension ResponseMatcherSpec {
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> ResponseMatcherSpec {
        var spec = ResponseMatcherSpec()
        if let h = try r.object("headers") {
            for k in h.keys {
                guard let v = h.value(k) else { continue }
                if case .null = v {
                    spec.headers.append((k, nil))
                } else {
                    spec.headers.append((k, try JSONRead.strings(v, h.path.key(k))))
                }
            }
            try h.finish()
        }
        spec.statusCodes = try r.ints("status_code")
        try r.finish()
        return spec
    }
}

extension HeaderSpec {
    /// `headers` with a `response` part (`header`) and/or a `request` part (`request_header`).
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        var spec = HeaderSpec()
        if let req = try r.object("request") {
            spec.request = try decodeOps(req)
            try req.finish()
        }
        guard let resp = try r.object("response") else {
            spec.hasResponse = spec.request == nil
            return spec
        }
        spec.ops = try decodeOps(resp)
        if let req = try resp.object("require") { spec.require = try ResponseMatcherSpec.decode(req) }
        spec.deferred = try resp.bool("deferred") ?? false
        try resp.finish()
        return spec
    }

    /// Caddy's `HeaderOps` members of `o` (the caller finishes `o`).
    static func decodeOps(_ resp: JSONObjectReader) throws(ConfigError) -> Ops {
        var ops = Ops()
        func fields(_ key: String) throws(ConfigError) -> [(String, [String])] {
            guard let o = try resp.object(key) else { return [] }
            var out: [(String, [String])] = []
            for k in o.keys { out.append((k, try o.strings(k) ?? [])) }
            try o.finish()
            return out
        }
        ops.add = try fields("add")
        ops.set = try fields("set")
        ops.delete = try resp.strings("delete") ?? []
        if let rep = try resp.object("replace") {
            for k in rep.keys {
                var list: [(find: String, replace: String)] = []
                for (e, ep) in try rep.array(k) ?? [] {
                    let o = try JSONObjectReader(e, ep)
                    guard let find = try o.string("search_regexp") else { throw o.missing("search_regexp") }
                    let repl = try o.string("replace") ?? ""
                    try o.finish()
                    if !HeaderSpec.containsPlaceholders(find) {
                        do { _ = try Regex(find) } catch { throw o.error("search_regexp", error.description) }
                    }
                    list.append((find, repl))
                }
                ops.replace.append((k, list))
            }
            try rep.finish()
        }
        return ops
    }
}

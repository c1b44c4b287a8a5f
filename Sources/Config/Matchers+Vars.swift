import JSON
import Caddyfile
import Handlers

extension MatcherSpecParsers {
    /// `vars <name|{placeholder}> <values...>` (`caddyhttp/vars.go` VarsMatcher).
    static func vars(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var spec = VarsMatcherSpec()
        while d.next() {
            guard d.nextArg() else { throw d.err("malformed vars matcher: expected field name") }
            let field = d.val
            let values = d.remainingArgs()
            if values.isEmpty { throw d.err("malformed vars matcher: expected at least one value to match against") }
            if let i = spec.entries.firstIndex(where: { $0.0 == field }) {
                spec.entries[i].1 += values
            } else {
                spec.entries.append((field, values))
            }
            if d.nextBlock(d.nesting) { throw d.err("malformed vars matcher: blocks are not supported") }
        }
        return spec
    }

    /// `vars_regexp [<name>] <field> <regexp>` (MatchVarsRE); the name defaults to the matcher's.
    static func varsRegexp(_ d: inout Dispenser) throws(CaddyfileError) -> any MatcherSpec {
        var spec = VarsRegexpMatcherSpec()
        while d.next() {
            let args = d.remainingArgs()
            var name = "", field = "", pattern = ""
            switch args.count {
            case 2: field = args[0]; pattern = args[1]
            case 3: name = args[0]; field = args[1]; pattern = args[2]
            default: throw d.argErr()
            }
            if name.isEmpty { name = d.context["matcher_name"] ?? "" }
            let re = try compile(pattern, &d)
            if let i = spec.entries.firstIndex(where: { $0.field == field }) {
                spec.entries[i] = (field, name, re)
            } else {
                spec.entries.append((field, name, re))
            }
            if d.nextBlock(d.nesting) { throw d.err("malformed vars_regexp matcher: blocks are not supported") }
        }
        return spec
    }
}

/// `vars` matcher: names (or whole placeholders) to the values any of which must equal.
package struct VarsMatcherSpec: MatcherSpec {
    package var entries: [(String, [String])] = []
    package var matcherName: String { "vars" }
    package var json: JSONValue {
        .object(entries.sorted { $0.0 < $1.0 }.map { ($0.0, .array($0.1.map { .string($0) })) })
    }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher { VarsMatcher(entries) }

    static func decode(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        let r = try JSONObjectReader(v, p)
        var spec = VarsMatcherSpec()
        for k in r.keys { spec.entries.append((k, try r.strings(k) ?? [])) }
        return spec
    }
}

/// `vars_regexp` matcher: names (or whole placeholders) to a pattern with a capture name.
package struct VarsRegexpMatcherSpec: MatcherSpec {
    package var entries: [(field: String, name: String, regex: Regex)] = []
    package var matcherName: String { "vars_regexp" }
    package var json: JSONValue {
        .object(entries.sorted { $0.field < $1.field }.map { f in
            var o: [(String, JSONValue)] = []
            if !f.name.isEmpty { o.append(("name", .string(f.name))) }
            o.append(("pattern", .string(f.regex.pattern)))
            return (f.field, .object(o))
        })
    }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher {
        VarsRegexpMatcher(entries.map { ($0.field, $0.regex, $0.name) })
    }

    static func decode(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        let r = try JSONObjectReader(v, p)
        var spec = VarsRegexpMatcherSpec()
        for k in r.keys {
            guard let o = try r.object(k) else { continue }
            let name = try o.string("name") ?? ""
            guard let pattern = try o.string("pattern") else { throw o.missing("pattern") }
            try o.finish()
            spec.entries.append((k, name, try MatcherSpecDecoders.regex(pattern, o.path.key("pattern"))))
        }
        return spec
    }
}

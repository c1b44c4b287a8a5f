import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `vars [<matcher>] [<name> <value>] | { <name> <value> … }` (`caddyhttp/vars.go`): values
    /// are typed as Caddy's ScalarVal reads them (quoted: string; else integer, float,
    /// boolean, string); strings expand placeholders per request.
    static func vars(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        var entries: [(String, JSONValue)] = []
        func set(_ name: String, _ v: JSONValue) {
            if let i = entries.firstIndex(where: { $0.0 == name }) { entries[i].1 = v } else { entries.append((name, v)) }
        }
        func nextVar(headerLine: Bool) throws(CaddyfileError) {
            if headerLine && !d.nextArg() { return }
            let name = d.val
            guard d.nextArg() else { throw d.argErr() }
            set(name, VarsSpec.value(ScalarValue(d.token)))
            if d.nextArg() { throw d.argErr() }
        }
        try nextVar(headerLine: true)
        let nesting = d.nesting
        while d.nextBlock(nesting) { try nextVar(headerLine: false) }
        site.addRoute("vars", matcher: m, handlers: [.spec(VarsSpec(typed: entries))])
    }

    /// `log_skip [<matcher>]` / `skip_log` (deprecated; Caddy warns): the `log_skip` variable.
    static func logSkip(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let name = d.val
        let m = try matcher(&d, site)
        if d.nextArg() { throw d.argErr() }
        if d.nextBlock(d.nesting) { throw d.err("log_skip directive does not accept blocks") }
        if name == "skip_log" {
            site.groups.warnings.append("\(d.file):\(d.line): the 'skip_log' directive is deprecated, please use 'log_skip' instead!")
        }
        site.addRoute(name, matcher: m, handlers: [.spec(VarsSpec(typed: [("log_skip", .bool(true))]))])
    }

    /// `log_name [<matcher>] <names...>`: the `access_logger_names` variable (Caddy's
    /// parseLogName): the request's access-log entry goes to these loggers
    /// (`http.log.access.NAME`; `""` is `http.log.access`) instead of the host's.
    static func logName(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        let names = d.remainingArgs()
        site.addRoute("log_name", matcher: m, handlers: [.spec(VarsSpec(typed: [("access_logger_names", .array(names.map { .string($0) }))]))])
    }
}

/// Caddy's `vars` handler as configured (`vars`, `root`, `log_skip`): names to JSON scalars.
package struct VarsSpec: HandlerSpec {
    package var entries: [(String, JSONValue)]
    package init(entries: [(String, String)]) { self.entries = entries.map { ($0.0, .string($0.1)) } }
    package init(typed entries: [(String, JSONValue)]) { self.entries = entries }

    /// A Caddyfile scalar as Caddy's JSON holds it.
    static func value(_ s: ScalarValue) -> JSONValue {
        switch s {
        case .string(let v): return .string(v)
        case .int(let i): return .number(String(i))
        case .double(let x): return .number(goFloat(x))
        case .bool(let b): return .bool(b)
        }
    }

    /// A float64 as Go's encoding/json writes it (shortest; integral values without `.0`).
    static func goFloat(_ x: Double) -> String {
        var s = "\(x)"
        if s.hasSuffix(".0") { s.removeLast(2) }
        return s
    }

    package var handlerName: String { "vars" }
    package var jsonFields: [(String, JSONValue)] { entries.sorted { $0.0 < $1.0 } }
    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        var typed: [(String, VarsHandler.Value)] = []
        for (k, v) in entries {
            switch v {
            case .string(let s): typed.append((k, .template(Template(s, keepUnknown: false, environment: context.environment))))
            case .number(let n): typed.append((k, .literal(Array(n.utf8))))
            case .bool(let b): typed.append((k, .literal(Array((b ? "true" : "false").utf8))))
            case .null: typed.append((k, .null))
            case .array(let a) where k == "access_logger_names":
                var names: [String] = []
                for e in a {
                    guard case .string(let n) = e else { throw ConfigError("vars: 'access_logger_names' must list strings") }
                    names.append(n)
                }
                typed.append((k, .names(names)))
            default: throw ConfigError("vars: '\(k)': only strings, numbers and booleans (and access_logger_names) are supported by Berth")
            }
        }
        return VarsHandler(typed: typed)
    }
}

extension VarsSpec {
    /// `vars`: every member but `handler` is one variable (strings, numbers, booleans, null).
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        var entries: [(String, JSONValue)] = []
        for k in r.keys where k != "handler" {
            guard let v = r.value(k) else { continue }
            switch v {
            case .string, .number, .bool, .null: entries.append((k, v))
            case .array where k == "access_logger_names":
                _ = try JSONRead.strings(v, r.path.key(k))
                entries.append((k, v))
            default: throw r.error(k, "only strings, numbers and booleans (and access_logger_names) are supported by Berth")
            }
        }
        return VarsSpec(typed: entries)
    }
}

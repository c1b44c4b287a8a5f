import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `map [<matcher>] <source> <destinations...> { [~]<input> <outputs...>; default <defaults...> }`
    /// (`caddyhttp/map/caddyfile.go`): outputs typed as ScalarVal, `-` for no value, missing
    /// outputs and defaults padded.
    static func map(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        guard d.nextArg() else { throw d.argErr() }
        var spec = MapSpec(source: d.val)
        spec.destinations = d.remainingArgs()
        if spec.destinations.isEmpty { throw d.err("missing destination argument(s)") }
        for dest in spec.destinations {
            if let short = Shorthands.simple.first(where: { $0.1.trimmingBraces == dest.trimmingBraces })?.0 {
                throw d.err("destination \(short) conflicts with a Caddyfile placeholder shorthand")
            }
        }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            if d.val == "default" {
                if spec.defaults != nil { throw d.err("defaults already defined") }
                var defaults = d.remainingArgs()
                while defaults.count < spec.destinations.count { defaults.append("") }
                spec.defaults = defaults
                continue
            }
            let input = d.val
            var outs: [JSONValue] = []
            while d.nextArg() {
                if d.val == "-" && !d.token.isQuoted {
                    outs.append(.null)
                } else {
                    outs.append(VarsSpec.value(ScalarValue(d.token)))
                }
            }
            if outs.count > spec.destinations.count { throw d.err("too many outputs") }
            while outs.count < spec.destinations.count { outs.append(.null) }
            if input.hasPrefix("~") {
                spec.mappings.append(.init(input: nil, inputRegexp: String(input.dropFirst()), outputs: outs))
            } else {
                spec.mappings.append(.init(input: input, inputRegexp: nil, outputs: outs))
            }
        }
        // Caddy checks these when the config loads; Berth at adapt, with the line.
        do { try spec.validate() } catch { throw d.err(error.message) }
        for (i, mp) in spec.mappings.enumerated() {
            if let p = mp.inputRegexp, !p.isEmpty {
                do { _ = try Regex(p) } catch { throw d.err("compiling regexp for mapping \(i): \(error.description)") }
            }
        }
        site.addRoute("map", matcher: m, handlers: [.spec(spec)])
    }
}

extension String {
    /// Go's `strings.Trim(s, "{}")`.
    var trimmingBraces: Substring {
        var s = Substring(self)
        while let c = s.first, c == "{" || c == "}" { s = s.dropFirst() }
        while let c = s.last, c == "{" || c == "}" { s = s.dropLast() }
        return s
    }
}

/// Caddy's `map` handler as configured.
package struct MapSpec: HandlerSpec {
    package struct Mapping: Sendable {
        package var input: String?
        package var inputRegexp: String?
        /// Strings, numbers, booleans; `.null` for no value.
        package var outputs: [JSONValue]
    }
    package var source: String
    package var destinations: [String] = []
    package var mappings: [Mapping] = []
    package var defaults: [String]? = nil

    init(source: String) { self.source = source }

    /// The destinations' placeholder names (Caddy's Provision: `{name}` → `name`).
    var destinationNames: [String] { destinations.map { String($0.trimmingBraces) } }

    package var handlerName: String { "map" }
    package var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if let d = defaults, !d.isEmpty { o.append(("defaults", .array(d.map { .string($0) }))) }
        if !destinations.isEmpty { o.append(("destinations", .array(destinations.map { .string($0) }))) }
        if !mappings.isEmpty {
            o.append(("mappings", .array(mappings.map { m in
                var mo: [(String, JSONValue)] = []
                if let i = m.input, !i.isEmpty { mo.append(("input", .string(i))) }
                if let r = m.inputRegexp, !r.isEmpty { mo.append(("input_regexp", .string(r))) }
                if !m.outputs.isEmpty { mo.append(("outputs", .array(m.outputs))) }
                return .object(mo)
            })))
        }
        if !source.isEmpty { o.append(("source", .string(source))) }
        return o
    }

    /// A scalar output as Caddy's `caddy.ToString` prints it; nil for no value.
    static func outputText(_ v: JSONValue) -> String? {
        switch v {
        case .null: return nil
        case .string(let s): return s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }

    /// Caddy's Provision and Validate checks.
    func validate() throws(ConfigError) {
        for dest in destinations where dest.utf8.filter({ $0 == UInt8(ascii: "{") }).count != 1 || !dest.hasPrefix("{") {
            throw ConfigError("destination must be a placeholder and only a placeholder")
        }
        let nDef = defaults?.count ?? 0
        if nDef > 0 && nDef != destinations.count { throw ConfigError("\(destinations.count) destinations != \(nDef) defaults") }
        var seen: [String: Int] = [:]
        for (i, m) in mappings.enumerated() {
            if let a = m.input, !a.isEmpty, let b = m.inputRegexp, !b.isEmpty {
                throw ConfigError("mapping \(i) has both input and input_regexp fields specified, which is confusing")
            }
            let input = (m.inputRegexp?.isEmpty == false ? m.inputRegexp : m.input) ?? ""
            if let prev = seen[input] {
                throw ConfigError("mapping \(i) has a duplicate input '\(input)' previously used with mapping \(prev)")
            }
            seen[input] = i
            if m.outputs.count != destinations.count {
                throw ConfigError("mapping \(i) has \(m.outputs.count) outputs but there are \(destinations.count) destinations defined")
            }
        }
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        try validate()
        var ms: [MapHandler.Mapping] = []
        for (i, m) in mappings.enumerated() {
            var re: Regex? = nil
            if let p = m.inputRegexp, !p.isEmpty {
                do { re = try Regex(p) } catch { throw ConfigError("compiling regexp for mapping \(i): \(error.description)") }
            }
            ms.append(MapHandler.Mapping(input: m.input ?? "", regex: re, outputs: m.outputs.map(MapSpec.outputText)))
        }
        return MapHandler(source: source, destinations: destinationNames, mappings: ms, defaults: defaults ?? [])
    }

    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        var spec = MapSpec(source: try r.string("source") ?? "")
        spec.destinations = try r.strings("destinations") ?? []
        spec.defaults = try r.strings("defaults")
        for (v, p) in try r.array("mappings") ?? [] {
            let o = try JSONObjectReader(v, p)
            var m = Mapping(input: try o.string("input"), inputRegexp: try o.string("input_regexp"), outputs: [])
            for (ov, op) in try o.array("outputs") ?? [] {
                switch ov {
                case .null, .string, .number, .bool: m.outputs.append(ov)
                default: throw op.error("expected a string, number, boolean or null")
                }
            }
            try o.finish()
            spec.mappings.append(m)
        }
        do { try spec.validate() } catch { throw r.error("mappings", error.description) }
        return spec
    }

    /// Every `map` destination name in `routes` (nested route lists included).
    static func destinationNames(in routes: [RouteConfig]) -> Set<String> {
        var out: Set<String> = []
        for r in routes {
            for h in r.handle {
                switch h {
                case .spec(let s): if let m = s as? MapSpec { out.formUnion(m.destinationNames) }
                case .subroute(let inner): out.formUnion(destinationNames(in: inner))
                }
            }
        }
        return out
    }
}

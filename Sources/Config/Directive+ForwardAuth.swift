import Caddyfile
import Handlers
import HTTPCore
import JSON
import Upstream

/// `forward_auth [<matcher>] [<upstreams...>] { uri <to>; copy_headers <fields...>; <reverse_proxy
/// subdirectives> }` (Caddy's `reverseproxy/forwardauth/caddyfile.go`).
extension DirectiveParsers {
    static func forwardAuth(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let directive = d.token
        let location = SourceLocation(file: d.file, line: d.line)
        let m = try matcher(&d, site)
        var proxy = ReverseProxySpec()
        var uri: String? = nil
        // Caddy keeps the entries in a map keyed by the name as written: a name given twice
        // keeps the last target.
        var copies: [(from: String, to: String)] = []
        try reverseProxyBody(&d, &proxy, location: location) { sub, d throws(CaddyfileError) in
            switch sub {
            case "uri":
                guard d.nextArg() else { throw d.argErr() }
                let v = d.val
                if d.nextArg() { throw d.argErr() }
                if uri != nil { throw d.err("cannot re-declare uri: \(v)") }
                uri = v
                return true
            case "copy_headers":
                // `d` is on the name when it is checked, so an error names its line.
                func add(_ d: Dispenser) throws(CaddyfileError) {
                    let n = d.val
                    let parts = n.split(separator: ">", omittingEmptySubsequences: false).map(String.init)
                    // Caddy takes `A>` (an empty name) and `A>B>C` (C ignored) and fails or
                    // misbehaves at run time; Berth says so here.
                    guard parts.count <= 2, !parts.contains(where: \.isEmpty) else {
                        throw d.err("copy_headers: '\(n)' is not a header field or a From>To rename")
                    }
                    let entry = (from: parts[0], to: parts.count == 2 ? parts[1] : parts[0])
                    if let i = copies.firstIndex(where: { $0.from == entry.from }) { copies[i] = entry } else { copies.append(entry) }
                }
                while d.nextArg() { try add(d) }
                let nesting = d.nesting
                while d.nextBlock(nesting) { try add(d) }
                if copies.isEmpty { throw d.argErr() }
                return true
            default:
                // `method`, `rewrite`, `handle_response`… are refused by the reverse_proxy
                // parser ("not supported by this Berth build yet").
                return false
            }
        }
        guard let uri else {
            throw CaddyfileError("the 'uri' subdirective is required", at: directive)
        }
        // Caddy's defaults come first; a `header_up` setting the same field replaces them (one
        // http.Header.Set in Caddy's HeaderOps).
        let defaults = [ReverseProxySpec.HeaderLine(field: "X-Forwarded-Method", args: ["{http.request.method}"]),
                        ReverseProxySpec.HeaderLine(field: "X-Forwarded-Uri", args: ["{http.request.uri}"])]
        let userSets = Set(proxy.headerUp.filter { $0.args.count == 1 && !"+-?".contains($0.field.first ?? " ") }
            .map { HeaderHandler.canonical($0.field) })
        proxy.headerUp = defaults.filter { !userSets.contains($0.field) } + proxy.headerUp
        let spec = ForwardAuthSpec(
            proxy: proxy, uri: uri,
            copies: copies.sorted { Array($0.from.utf8).lexicographicallyPrecedes(Array($1.from.utf8)) }
                .map { ForwardAuthSubrequest.Copy(from: HeaderHandler.canonical($0.from), to: HeaderHandler.canonical($0.to)) })
        site.addRoute("forward_auth", matcher: m, handlers: [.spec(spec)])
    }
}

/// `forward_auth`: a `reverse_proxy` in Caddy's JSON with `rewrite` (GET, the `uri`) and one
/// `handle_response` for 2xx whose routes copy the fields. Berth's JSON reader takes exactly
/// this shape back (any other `handle_response` is refused).
package struct ForwardAuthSpec: HandlerSpec {
    /// The proxy part; `headerUp` includes `X-Forwarded-Method` / `X-Forwarded-Uri`.
    package var proxy: ReverseProxySpec
    package var uri: String
    /// In the order they run; names canonical (the answer's field, the request's field).
    package var copies: [ForwardAuthSubrequest.Copy]

    package var handlerName: String { "reverse_proxy" }

    package var jsonFields: [(String, JSONValue)] {
        var routes: [JSONValue] = [.object([("handle", .array([.object([("handler", .string("vars"))])]))])]
        for c in copies {
            let placeholder = "{http.reverse_proxy.header.\(c.from)}"
            routes.append(.object([("handle", .array([.object([
                ("handler", .string("headers")), ("request", .object([("delete", .array([.string(c.to)]))])),
            ])]))]))
            routes.append(.object([
                ("handle", .array([.object([
                    ("handler", .string("headers")),
                    ("request", .object([("set", .object([(c.to, .array([.string(placeholder)]))]))])),
                ])])),
                ("match", .array([.object([("not", .array([.object([("vars", .object([(placeholder, .array([.string("")]))]))])]))])])),
            ]))
        }
        let handleResponse: JSONValue = .array([.object([
            ("match", .object([("status_code", .array([.int(2)]))])),
            ("routes", .array(routes)),
        ])])
        var o = proxy.jsonFields
        o.append(("handle_response", handleResponse))
        o.append(("rewrite", .object([("method", .string("GET")), ("uri", .string(uri))])))
        return o
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        var c = try proxy.configuration(context)
        c.subrequest = ForwardAuthSubrequest(uri: uri, copies: copies)
        return ForwardAuthHandler(c)
    }

    /// The `reverse_proxy` object `forward_auth` adapts to (see `jsonFields`).
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        guard let rw = try r.object("rewrite") else { throw r.missing("rewrite") }
        guard try rw.string("method") == "GET" else {
            throw rw.error("method", "Berth reads reverse_proxy rewrites only as forward_auth writes them (method GET)")
        }
        guard let uri = try rw.string("uri") else { throw rw.missing("uri") }
        try rw.finish()
        let shape = "Berth reads handle_response only as forward_auth writes it"
        guard let hr = try r.array("handle_response") else { throw r.missing("handle_response") }
        guard hr.count == 1 else { throw r.error("handle_response", "\(shape) (one entry for 2xx)") }
        let entry = try JSONObjectReader(hr[0].0, hr[0].1)
        guard let match = try entry.object("match") else { throw entry.missing("match") }
        guard try match.ints("status_code") == [2] else { throw match.error("status_code", "\(shape) (status_code [2])") }
        try match.finish()
        guard let routes = try entry.array("routes"), routes.count % 2 == 1 else {
            throw entry.error("routes", "\(shape) (a vars route, then a delete and a set route per field)")
        }
        try entry.finish()
        /// The one handler of a route, as a reader (`handler` checked).
        func handler(_ v: JSONValue, _ p: JSONPath, _ name: String, matched: Bool) throws(ConfigError) -> (JSONObjectReader, JSONObjectReader?) {
            let route = try JSONObjectReader(v, p)
            guard let hs = try route.array("handle"), hs.count == 1 else { throw route.error("handle", "\(shape) (one handler)") }
            var m: JSONObjectReader? = nil
            if matched {
                guard let sets = try route.array("match"), sets.count == 1 else { throw route.error("match", "\(shape) (one matcher set)") }
                m = try JSONObjectReader(sets[0].0, sets[0].1)
            }
            try route.finish()
            let h = try JSONObjectReader(hs[0].0, hs[0].1)
            guard try h.string("handler") == name else { throw h.error("handler", "\(shape) (\(name))") }
            return (h, m)
        }
        let (vars, _) = try handler(routes[0].0, routes[0].1, "vars", matched: false)
        try vars.finish()
        var copies: [ForwardAuthSubrequest.Copy] = []
        var i = 1
        while i < routes.count {
            let (del, _) = try handler(routes[i].0, routes[i].1, "headers", matched: false)
            guard let dr = try del.object("request"), let names = try dr.strings("delete"), names.count == 1 else {
                throw del.error("request", "\(shape) (request.delete with one field)")
            }
            try dr.finish()
            try del.finish()
            let (set, m) = try handler(routes[i + 1].0, routes[i + 1].1, "headers", matched: true)
            guard let sr = try set.object("request") else { throw set.missing("request") }
            guard let so = try sr.object("set") else { throw sr.missing("set") }
            guard so.keys == [names[0]] else { throw sr.error("set", "\(shape) (set of the deleted field \(names[0]))") }
            guard let vals = try so.strings(names[0]), vals.count == 1,
                  vals[0].hasPrefix("{http.reverse_proxy.header."), vals[0].hasSuffix("}"), vals[0].count > 28
            else {
                throw so.error(names[0], "\(shape) ([\"{http.reverse_proxy.header.NAME}\"])")
            }
            try so.finish()
            try sr.finish()
            try set.finish()
            let placeholder = vals[0]
            // `"match": [{"not": [{"vars": {PLACEHOLDER: [""]}}]}]`
            let mm = m.unsafelyUnwrapped
            guard let not = try mm.array("not") else { throw mm.missing("not") }
            guard not.count == 1 else { throw mm.error("not", "\(shape) (one matcher set)") }
            let n0 = try JSONObjectReader(not[0].0, not[0].1)
            guard let vars = try n0.object("vars") else { throw n0.missing("vars") }
            try n0.finish()
            try mm.finish()
            guard vars.keys == [placeholder] else { throw n0.error("vars", "\(shape) (vars \(placeholder))") }
            guard try vars.strings(placeholder) == [""] else { throw vars.error(placeholder, "\(shape) ([\"\"])") }
            try vars.finish()
            copies.append(ForwardAuthSubrequest.Copy(from: String(placeholder.dropFirst(27).dropLast()), to: names[0]))
            i += 2
        }
        let proxy = try ReverseProxySpec.decodeProxy(r)
        return ForwardAuthSpec(proxy: proxy, uri: uri, copies: copies)
    }
}

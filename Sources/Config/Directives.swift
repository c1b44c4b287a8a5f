import Caddyfile

/// Caddy's default directive order (`httpcaddyfile/directives.go`); handlers of a site run in
/// this order regardless of the order they are written in.
package let directiveOrder: [String] = [
    "tracing", "map", "vars", "fs", "root", "log_append", "skip_log", "log_skip", "log_name", "header",
    "copy_response_headers", "request_body", "timeouts", "redir", "method", "rewrite", "uri", "try_files",
    "basicauth", "basic_auth", "forward_auth", "request_header", "encode", "push", "intercept", "templates",
    "invoke", "handle", "handle_path", "route", "abort", "error", "copy_response", "respond", "metrics",
    "reverse_proxy", "php_fastcgi", "file_server", "acme_server",
]

/// Directives that are not handlers (no position in the order).
let nonHandlerDirectives: Set<String> = ["bind", "tls", "log", "handle_errors", "import"]

/// Directives Caddy knows that this Berth build does not implement yet: a clear error instead of
/// "unrecognized directive".
let knownButUnsupported: Set<String> = Set(directiveOrder).union(["tls", "handle_errors"])
    .subtracting(DirectiveRegistry.parsers.keys)

/// A handler produced by one directive, with what is needed to order it.
package struct DirectiveRoute {
    package var directive: String
    package var route: RouteConfig
    /// The path of a single path matcher, used to sort longer paths first (Caddy's sortRoutes).
    package var pathSpecificity: Int?
    package var hasMatcher: Bool
}

/// Per-site state while reading directives.
package struct SiteState {
    package var namedMatchers: [String: [[any MatcherSpec]]] = [:]
    package var routes: [DirectiveRoute] = []
    package var binds: [(addresses: [ListenAddress], protocols: [HTTPProtocolName], location: SourceLocation)] = []
    /// The site's `log` directives (names of unnamed custom logs are assigned after parsing).
    package var logs: [ParsedLog] = []
    package var log: Bool { !logs.isEmpty }
    /// The site's `tls` directive.
    package var tls: SiteTLS?
    /// The site's `handle_errors` blocks, each one route (status-matched when codes are given).
    package var errorRoutes: [RouteConfig] = []
    /// Names route groups (Caddy's groupCounter); shared with nested blocks.
    package var groups = GroupCounter()
    /// Set while parsing a nested block (`handle`, `route`…): site-only directives are refused.
    package var nested = false
    package init() {}

    /// The state for a nested block: the enclosing block's named matchers, no routes yet.
    package func child() -> SiteState {
        var c = SiteState()
        c.namedMatchers = namedMatchers
        c.groups = groups
        c.nested = true
        return c
    }

    /// Adds the route of one handler directive: `matcher` is what `DirectiveParsers.matcher`
    /// returned for the token after the directive name (nil when there was none).
    package mutating func addRoute(_ directive: String, matcher: (sets: [[any MatcherSpec]], specificity: Int?)?,
                                   handlers: [HandlerConfig]) {
        let route = RouteConfig(match: matcher?.sets ?? [], handle: handlers)
        routes.append(DirectiveRoute(directive: directive, route: route, pathSpecificity: matcher?.specificity,
                                     hasMatcher: !(matcher?.sets.isEmpty ?? true)))
    }
}

package enum DirectiveParsers {
    /// Reads an optional matcher token after the directive name (`*`, `/path`, `@name`).
    package static func matcher(_ d: inout Dispenser, _ site: SiteState) throws(CaddyfileError) -> (sets: [[any MatcherSpec]], specificity: Int?)? {
        guard d.nextArg() else { return nil }
        let v = d.val
        // Caddy looks at the text only, quoted or not (matcherSetFromMatcherToken).
        if v == "*" { return ([], nil) }
        if v.hasPrefix("/") { return ([[PathMatcherSpec([v])]], v.count) }
        if v.hasPrefix("@") {
            guard let sets = site.namedMatchers[v] else {
                throw d.err("unrecognized named matcher: \(v)")
            }
            return (sets, nil)
        }
        _ = d.prev()
        return nil
    }

    /// `respond [<matcher>] <status>|<body> [<status>] { body <text>; close }` (caddy-behavior §9).
    static func respond(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        var args: [String] = []
        var argTokens: [Token] = []
        while d.nextArg() {
            args.append(d.val)
            argTokens.append(d.token)
        }
        var status: Int? = nil
        var body: String? = nil
        // Caddy (staticresp.go UnmarshalCaddyfile): one argument is a status when it is a
        // positive 3-digit number, else the body; at least one argument is required.
        func isStatus(_ s: String) -> Bool { s.utf8.count == 3 && (Int(s) ?? 0) > 0 }
        switch args.count {
        case 1:
            if isStatus(args[0]) { status = Int(args[0]) } else { body = args[0] }
        case 2:
            body = args[0]
            guard let s = Int(args[1]) else {
                if args[1].contains("{") {
                    throw d.err("placeholder status codes ('\(args[1])') are not supported by this Berth build yet")
                }
                throw d.err("bad status code '\(args[1])'")
            }
            status = s
        default:
            throw d.argErr()
        }
        var close = false
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            switch d.val {
            case "body":
                if body != nil { throw d.err("body already specified") }
                guard d.nextArg() else { throw d.argErr() }
                body = d.val
                if d.nextArg() { throw d.argErr() }
            case "close":
                if close { throw d.err("close already specified") }
                if d.nextArg() { throw d.argErr() }
                close = true
            default:
                throw d.err("unrecognized subdirective '\(d.val)'")
            }
        }
        if let s = status, !(100...999).contains(s) { throw d.err("bad status code '\(s)'") }
        site.addRoute("respond", matcher: m, handlers: [.spec(StaticResponseSpec(status: status, body: body, close: close))])
    }

    /// `log [name] { output …; format …; level …; hostnames …; no_hostname }` inside a site.
    static func log(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        var none: Set<String>? = nil
        site.logs.append(try parseLog(&d, globalNames: &none))
    }

    /// `bind <addresses...> [{ protocols ... }]`.
    static func bind(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let loc = SourceLocation(file: d.file, line: d.line)
        var addrs: [ListenAddress] = []
        while d.nextArg() {
            addrs.append(try parseBindAddress(d.val, &d))
        }
        if addrs.isEmpty { throw d.argErr() }
        let protocols = try protocolsBlock(&d)
        site.binds.append((addrs, protocols ?? [], loc))
    }

    /// The arguments of a `protocols` line (`bind { protocols }`, `servers { protocols }`).
    static func protocolList(_ d: inout Dispenser) throws(CaddyfileError) -> [HTTPProtocolName] {
        var ps: [HTTPProtocolName] = []
        while d.nextArg() {
            guard let p = HTTPProtocolName(rawValue: d.val) else {
                throw d.err("unknown protocol '\(d.val)': expected h1, h2, h2c or h3")
            }
            ps.append(p)
        }
        if ps.isEmpty { throw d.argErr() }
        return ps
    }

    /// Reads an optional `{ protocols ... }` block.
    static func protocolsBlock(_ d: inout Dispenser) throws(CaddyfileError) -> [HTTPProtocolName]? {
        var protocols: [HTTPProtocolName]? = nil
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            switch d.val {
            case "protocols":
                protocols = try protocolList(&d)
            default:
                throw d.err("unknown subdirective '\(d.val)'")
            }
        }
        return protocols
    }

    /// Parses one bind address: `fd/N`, `fdgram/N`, `fdname/NAME[/K]`, `fdgramname/NAME[/K]`,
    /// `unix//path`, an IP (v6 in brackets or bare), `localhost`, or `tcp/`-prefixed forms.
    static func parseBindAddress(_ raw: String, _ d: inout Dispenser) throws(CaddyfileError) -> ListenAddress {
        var s = raw
        func number(_ t: String) throws(CaddyfileError) -> Int {
            guard let n = GoStrconv.parseUint(t), n <= Int(Int32.max) else {
                throw d.err("invalid file descriptor: strconv.ParseUint: parsing \"\(t)\": invalid syntax")
            }
            return n
        }
        func nameIndex(_ t: String) throws(CaddyfileError) -> (String, Int?) {
            let parts = t.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard let name = parts.first, !name.isEmpty, parts.count <= 2 else {
                throw d.err("invalid socket name '\(t)': expected NAME or NAME/INDEX")
            }
            if parts.count == 2 {
                guard let k = Int(parts[1]), k >= 0 else { throw d.err("invalid socket index '\(parts[1])' in '\(raw)'") }
                return (name, k)
            }
            return (name, nil)
        }
        if s.hasPrefix("fd/") { return .fd(try number(String(s.dropFirst(3)))) }
        if s.hasPrefix("fdgram/") { return .fdgram(try number(String(s.dropFirst(7)))) }
        if s.hasPrefix("fdname/") { let (n, k) = try nameIndex(String(s.dropFirst(7))); return .fdname(n, index: k) }
        if s.hasPrefix("fdgramname/") { let (n, k) = try nameIndex(String(s.dropFirst(11))); return .fdgramname(n, index: k) }
        if s.hasPrefix("unix/") { return .unix(path: String(s.dropFirst(5))) }
        for prefix in ["tcp/", "tcp4/", "tcp6/"] where s.hasPrefix(prefix) { s = String(s.dropFirst(prefix.count)) }
        if s.hasPrefix("udp/") || s.hasPrefix("udp4/") || s.hasPrefix("udp6/") {
            throw d.err("bind \(raw): udp addresses are chosen by protocols h3, not by bind")
        }
        var host = s
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.contains(":") && !raw.contains("[") && host.filter({ $0 == ":" }).count == 1 {
            throw d.err("bind \(raw): ports are taken from the site address, not from bind")
        }
        return .tcp(host: host, port: 0)
    }
}

extension GoStrconv {
    /// Go's `strconv.ParseUint(s, 0, 64)`: decimal, `0x` hex, `0o`/leading-0 octal, `0b`
    /// binary; no sign; underscores only with a base prefix (or leading 0) and only between
    /// digits (`underscoreOK`). Values above `Int.max` are rejected too.
    package static func parseUint(_ s: String) -> Int? {
        let b = Array(s.utf8)
        guard !b.isEmpty else { return nil }
        @inline(__always) func lower(_ c: UInt8) -> UInt8 { c | 0x20 }
        var i = 0
        var base = 10
        var prefixed = false
        if b[0] == UInt8(ascii: "0") {
            prefixed = true
            if b.count >= 3 && lower(b[1]) == UInt8(ascii: "b") { base = 2; i = 2 }
            else if b.count >= 3 && lower(b[1]) == UInt8(ascii: "o") { base = 8; i = 2 }
            else if b.count >= 3 && lower(b[1]) == UInt8(ascii: "x") { base = 16; i = 2 }
            else { base = 8; i = 1 }
        }
        var value = 0
        var underscores = false
        while i < b.count {
            let c = b[i]
            i += 1
            let d: Int
            if c == UInt8(ascii: "_") && prefixed {
                underscores = true
                continue
            } else if c >= 0x30 && c <= 0x39 {
                d = Int(c - 0x30)
            } else if lower(c) >= UInt8(ascii: "a") && lower(c) <= UInt8(ascii: "z") {
                d = Int(lower(c) - UInt8(ascii: "a")) + 10
            } else {
                return nil
            }
            guard d < base else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: base)
            let (a, o2) = m.addingReportingOverflow(d)
            if o1 || o2 { return nil }
            value = a
        }
        if underscores && !underscoreOK(b) { return nil }
        return value
    }

    /// Go's `underscoreOK`: underscores must separate digits (a base prefix counts as a digit).
    static func underscoreOK(_ s: [UInt8]) -> Bool {
        var saw = UInt8(ascii: "^")
        var i = 0
        var hex = false
        if s.count >= 2, s[0] == UInt8(ascii: "0"), [UInt8(ascii: "b"), UInt8(ascii: "o"), UInt8(ascii: "x")].contains(s[1] | 0x20) {
            i = 2
            saw = UInt8(ascii: "0")
            hex = s[1] | 0x20 == UInt8(ascii: "x")
        }
        while i < s.count {
            let c = s[i]
            i += 1
            if (c >= 0x30 && c <= 0x39) || (hex && (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "f")) {
                saw = UInt8(ascii: "0")
                continue
            }
            if c == UInt8(ascii: "_") {
                if saw != UInt8(ascii: "0") { return false }
                saw = UInt8(ascii: "_")
                continue
            }
            if saw == UInt8(ascii: "_") { return false }
            saw = UInt8(ascii: "!")
        }
        return saw != UInt8(ascii: "_")
    }
}

/// Caddy's group name counter (`group0`, `group1`, …), shared by a site and its nested blocks;
/// also collects the site's adapter warnings (`file:line: message`).
package final class GroupCounter {
    private var n = 0
    package var warnings: [String] = []
    /// Names this block (and its nested blocks) `invoke`, with where.
    package var invoked: [(String, SourceLocation)] = []
    /// Directive positions for sorting (Caddy's order, changed by `order` global options).
    package var positions: [String: Int] = SiteBuild.directivePositions
    package init() {}
    package func next() -> String {
        defer { n += 1 }
        return "group\(n)"
    }
}

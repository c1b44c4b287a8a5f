import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// The segments of the block that opens at the end of the current line.
    static func blockSegments(_ d: inout Dispenser) -> [Segment] {
        var segments: [Segment] = []
        let nesting = d.nesting
        while d.nextBlock(nesting) { segments.append(d.nextSegment()) }
        return segments
    }

    /// Parses a nested block's directives into a subroute: sorted like a site (`handle`,
    /// `handle_path`, `handle_errors`) or as written (`route`); groups assigned either way.
    static func nestedRoutes(_ d: inout Dispenser, _ site: inout SiteState, sort: Bool) throws(CaddyfileError) -> [RouteConfig] {
        var child = site.child()
        try SiteBuild.parseDirectives(blockSegments(&d), into: &child)
        return try SiteBuild.buildSubroute(child.routes, sort: sort, groups: child.groups)
    }

    /// `handle [<matcher>] { … }`: mutually exclusive with the other `handle`/`handle_path`
    /// blocks of the same block (Caddy's group), directives inside sorted.
    static func handle(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        if d.nextArg() { throw d.argErr() }
        let routes = try nestedRoutes(&d, &site, sort: true)
        site.addRoute("handle", matcher: m, handlers: [.subroute(routes)])
    }

    /// `handle_path <path> { … }`: `handle` with a path matcher whose prefix (without a final
    /// `*` or `/*`) is stripped from the request path first (`rewrite/caddyfile.go`).
    static func handlePath(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        guard d.nextArg() else { throw d.argErr() }
        let path = d.val
        if !path.hasPrefix("/") { throw d.err("path matcher must begin with '/', got \(path)") }
        if d.nextArg() { throw d.argErr() }
        var strip = path
        if strip.hasSuffix("/*") { strip.removeLast(2) } else if strip.hasSuffix("*") { strip.removeLast() }
        var spec = RewriteSpec()
        spec.stripPrefix = strip
        let inner = try nestedRoutes(&d, &site, sort: true)
        let routes = [RouteConfig(handle: [.spec(spec)])] + inner
        // Sorted and grouped as `handle` (Caddy's normalizeDirectiveName).
        site.addRoute("handle", matcher: ([[PathMatcherSpec([path])]], path.utf8.count), handlers: [.subroute(routes)])
    }

    /// `route [<matcher>] { … }`: directives run in the order written.
    static func route(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        if d.nextArg() { throw d.argErr() }
        let routes = try nestedRoutes(&d, &site, sort: false)
        site.addRoute("route", matcher: m, handlers: [.subroute(routes)])
    }

    /// `handle_errors [<status codes…>] { … }`: routes run when a handler fails (`error`,
    /// `try_files =404`, …), with `{http.error.*}` set; codes like `404` or `5xx` restrict it.
    static func handleErrors(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        if site.nested {
            throw d.err("directive 'handle_errors' is not an ordered HTTP handler, so it cannot be used here - try placing within a route block or using the order global option")
        }
        var classes: [Int] = []
        var codes: [Int] = []
        for v in d.remainingArgs() {
            guard v.utf8.count == 3 else { throw d.err("bad status value '\(v)'") }
            if v.hasSuffix("xx") {
                guard let c = GoStrconv.atoi(String(v.prefix(1))) else {
                    throw d.err("bad status value '\(v.prefix(1))': strconv.Atoi: parsing \"\(v.prefix(1))\": invalid syntax")
                }
                classes.append(c)
                continue
            }
            guard let n = GoStrconv.atoi(v) else {
                throw d.err("bad status value '\(v)': strconv.Atoi: parsing \"\(v)\": invalid syntax")
            }
            codes.append(n)
        }
        let inner = try nestedRoutes(&d, &site, sort: true)
        var match: [[any MatcherSpec]] = []
        if !classes.isEmpty || !codes.isEmpty { match = [[ErrorStatusMatcherSpec(classes: classes, codes: codes)]] }
        site.errorRoutes.append(RouteConfig(match: match, handle: [.subroute(inner)]))
    }

    /// `error [<matcher>] <message>|<status> [<status>] { message <text> }`.
    static func error(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        let args = d.remainingArgs()
        var spec = ErrorSpec()
        switch args.count {
        case 1:
            if args[0].utf8.count == 3, let n = GoStrconv.atoi(args[0]), n > 0 {
                spec.status = args[0]
            } else {
                spec.message = args[0]
            }
        case 2:
            spec.message = args[0]
            spec.status = args[1]
        default:
            throw d.argErr()
        }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            switch d.val {
            case "message":
                if !spec.message.isEmpty { throw d.err("message already specified") }
                guard let a = d.allArgs(count: 1) else { throw d.argErr() }
                spec.message = a[0]
            default:
                throw d.err("unrecognized subdirective '\(d.val)'")
            }
        }
        site.addRoute("error", matcher: m, handlers: [.spec(spec)])
    }

    /// `abort [<matcher>]`: close the connection without a response.
    static func abort(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        if d.nextArg() || d.nextBlock(d.nesting) { throw d.argErr() }
        site.addRoute("abort", matcher: m, handlers: [.spec(AbortSpec())])
    }
}

/// `handle_errors` status codes, as Caddy's generated `expression` matcher on
/// `{http.error.status_code}`.
package struct ErrorStatusMatcherSpec: MatcherSpec {
    package var classes: [Int]
    package var codes: [Int]
    package var matcherName: String { "expression" }
    package var json: JSONValue {
        var parts: [String] = classes.map { "{http.error.status_code} >= \($0)00 && {http.error.status_code} <= \($0)99" }
        if !codes.isEmpty { parts.append("{http.error.status_code} in [" + codes.map(String.init).joined(separator: ", ") + "]") }
        return .string(parts.joined(separator: " || "))
    }
    package func build(_ context: BuildContext) throws(ConfigError) -> any RequestMatcher {
        ErrorStatusMatcher(classes: classes, codes: codes)
    }
}

/// Caddy's `static_error` handler (the `error` directive).
package struct ErrorSpec: HandlerSpec {
    package var message = ""
    package var status: String? = nil
    package var handlerName: String { "error" }
    package var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if !message.isEmpty { o.append(("error", .string(message))) }
        if let s = status { o.append(("status_code", Int(s).map { .int($0) } ?? .string(s))) }
        return o
    }
    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        let code = status.flatMap { Int($0) }
        let template = status != nil && code == nil ? Template(status!, keepUnknown: false, environment: context.environment) : nil
        return ErrorHandler(status: code, statusTemplate: template,
                            message: Template(message, keepUnknown: true, environment: context.environment))
    }
}

/// Caddy's `abort` (`static_response` with `abort: true`).
package struct AbortSpec: HandlerSpec {
    package var handlerName: String { "static_response" }
    package var jsonFields: [(String, JSONValue)] { [("abort", .bool(true))] }
    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler { AbortHandler() }
}

// MARK: Berth's JSON

extension ErrorStatusMatcherSpec {
    /// Reads back the `expression` `handle_errors` generates; Berth has no CEL, so any other
    /// expression is refused.
    static func decode(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> any MatcherSpec {
        let text = try JSONRead.string(v, p)
        let field = "{http.error.status_code}"
        var classes: [Int] = [], codes: [Int] = []
        func refuse() -> ConfigError {
            p.error("only the status expressions handle_errors generates are supported (Berth has no CEL): '\(text)'")
        }
        for part in text.split(separator: " || ", omittingEmptySubsequences: false).map(String.init) {
            let inPrefix = field + " in ["
            if part.hasPrefix(inPrefix) && part.hasSuffix("]") {
                let list = part.dropFirst(inPrefix.count).dropLast()
                for n in list.split(separator: ",") {
                    guard let c = Int(n.drop { $0 == " " }), (100...999).contains(c) else { throw refuse() }
                    codes.append(c)
                }
                continue
            }
            let words = part.split(separator: " ")
            guard words.count == 7, words[0] == field, words[1] == ">=", words[3] == "&&", words[4] == field, words[5] == "<=",
                let lo = Int(words[2]), let hi = Int(words[6]), lo % 100 == 0, hi == lo + 99, (1...9).contains(lo / 100)
            else { throw refuse() }
            classes.append(lo / 100)
        }
        let spec = ErrorStatusMatcherSpec(classes: classes, codes: codes)
        // Only the exact spelling round-trips (the parts are in this order).
        guard spec.json == v else { throw refuse() }
        return spec
    }
}

extension ErrorSpec {
    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        var spec = ErrorSpec()
        spec.message = try r.string("error") ?? ""
        spec.status = try r.statusText("status_code")
        return spec
    }
}

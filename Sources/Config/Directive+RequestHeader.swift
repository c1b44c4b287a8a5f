import Caddyfile
import Handlers

extension DirectiveParsers {
    /// `request_header [<matcher>] [+|-]<field> [<value>|<find>] [<replace>]`
    /// (`headers/caddyfile.go` parseReqHdrCaddyfile): one operation on the request's header
    /// fields, as a `headers` handler with a `request` part. It runs at its place in the
    /// directive order (after `basic_auth`, before `reverse_proxy`), so later handlers and
    /// upstreams see the change. `Host` is the request's host (`{host}`, the proxied Host).
    static func requestHeader(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        guard d.nextArg() else { throw d.argErr() }
        var field = d.val
        if field.hasSuffix(":") { field.removeLast() }
        var value = ""
        var replacement: String? = nil
        if d.nextArg() { value = d.val }
        if d.nextArg() {
            replacement = d.val
            if d.nextArg() { throw d.argErr() }
        }
        var spec = HeaderSpec()
        spec.hasResponse = false
        var ops = HeaderSpec.Ops()
        try ops.applyRequest(field: field, value: value, replacement: replacement, &d)
        spec.request = ops
        site.addRoute("request_header", matcher: m, handlers: [.spec(spec)])
    }
}

extension HeaderSpec.Ops {
    /// Caddy's applyHeaderOp without response options: `+` adds, `-` deletes, a replacement
    /// makes `value` a regexp (any `+-?>` prefix dropped), `>` sets like no prefix; `?` is
    /// refused.
    mutating func applyRequest(field: String, value: String, replacement: String?, _ d: inout Dispenser) throws(CaddyfileError) {
        if field.hasPrefix("+") {
            let f = HeaderHandler.canonical(String(field.dropFirst()))
            if let i = add.firstIndex(where: { $0.0 == f }) { add[i].1.append(value) } else { add.append((f, [value])) }
        } else if field.hasPrefix("-") {
            delete.append(String(field.dropFirst()))
        } else if field.hasPrefix("?") {
            throw d.err("\(field): the default header modifier ('?') can only be used on response headers; for conditional manipulation of request headers, use matchers")
        } else if let repl = replacement {
            var f = Substring(field)
            while let c = f.first, "+-?>".contains(c) { f = f.dropFirst() }
            let name = String(f)
            if !HeaderSpec.containsPlaceholders(value) {
                do { _ = try Regex(value) } catch {
                    throw d.err("replacement 0 for header field '\(name)': \(error.description)")
                }
            }
            if let i = self.replace.firstIndex(where: { $0.0 == name }) {
                self.replace[i].1.append((value, repl))
            } else {
                self.replace.append((name, [(value, repl)]))
            }
        } else {
            let f = HeaderHandler.canonical(field.hasPrefix(">") ? String(field.dropFirst()) : field)
            if let i = set.firstIndex(where: { $0.0 == f }) { set[i].1 = [value] } else { set.append((f, [value])) }
        }
    }
}

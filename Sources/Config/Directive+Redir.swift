import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `redir [<matcher>] <to> [<code>]` (caddy-behavior §10; `builtins.go` parseRedir): the
    /// code is `temporary`/empty (302), `permanent` (301), `html` (200 with a meta-refresh
    /// page, no Location), a placeholder, or a number in 300–399 or 401. Extra arguments are
    /// ignored, as in Caddy.
    static func redir(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        guard d.nextArg() else { throw d.argErr() }
        let to = d.val
        var code = ""
        if d.nextArg() { code = d.val }
        var spec = RedirSpec(to: to, status: "302")
        switch code {
        case "permanent": spec.status = "301"
        case "temporary", "": spec.status = "302"
        case "html":
            let safe = RedirSpec.htmlEscape(to)
            spec.body = """
                <!DOCTYPE html>
                <html>
                \t<head>
                \t\t<title>Redirecting...</title>
                \t\t<script>window.location.replace("\(safe)");</script>
                \t\t<meta http-equiv="refresh" content="0; URL='\(safe)'">
                \t</head>
                \t<body>Redirecting to <a href="\(safe)">\(safe)</a>...</body>
                </html>

                """
            spec.status = "200"
            spec.html = true
        default:
            if !code.hasPrefix("{") {
                guard let n = GoStrconv.atoi(code) else {
                    throw d.err("Not a supported redir code type or not valid integer: '\(code)'")
                }
                if n < 300 || (n > 399 && n != 401) {
                    throw d.err("Redir code not in the 3xx range or 401: '\(n)'")
                }
            }
            spec.status = code
        }
        site.addRoute("redir", matcher: m, handlers: [.spec(spec)])
    }
}

/// `redir` compiles to Caddy's `static_response` with a `Location` header (or, for `html`, a
/// body and a Content-Type) and a status that may be a placeholder.
package struct RedirSpec: HandlerSpec {
    package var to: String
    /// The status as written after mapping the keywords: a number or a placeholder.
    package var status: String
    package var body: String? = nil
    package var html = false

    package init(to: String, status: String) {
        self.to = to
        self.status = status
    }

    /// Go's `html.EscapeString`.
    static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "'": out += "&#39;"
            case "\"": out += "&#34;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    package var handlerName: String { "static_response" }
    package var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if let b = body { o.append(("body", .string(b))) }
        if html {
            o.append(("headers", .object([("Content-Type", .array([.string("text/html; charset=utf-8")]))])))
        } else {
            o.append(("headers", .object([("Location", .array([.string(to)]))])))
        }
        if let n = Int(status) { o.append(("status_code", .int(n))) } else { o.append(("status_code", .string(status))) }
        return o
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        let headers: [(name: String, value: Template)] = html
            ? [("Content-Type", Template("text/html; charset=utf-8", keepUnknown: false))]
            : [("Location", Template(to, keepUnknown: false, environment: context.environment))]
        let code = Int(status)
        return RespondHandler(
            status: code ?? 0, body: Template(body ?? "", keepUnknown: true, environment: context.environment),
            headers: headers, statusTemplate: code == nil ? Template(status, keepUnknown: false, environment: context.environment) : nil)
    }
}

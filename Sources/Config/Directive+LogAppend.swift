import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `log_append [<matcher>] [<]<key> <value>` (`caddyhttp/logging/caddyfile.go`): adds a
    /// field to the access-log entry; a `<` before the key takes the value before the rest of
    /// the chain runs (`early`).
    static func logAppend(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        guard d.nextArg() else { throw d.argErr() }
        var key = d.val
        guard d.nextArg() else { throw d.argErr() }
        var early = false
        if key.hasPrefix("<") && key.utf8.count > 1 {
            early = true
            key.removeFirst()
        }
        let value = d.val
        if LogAppendSpec.bodyPlaceholders.contains(value) {
            throw d.err("log_append \(value): logging request and response bodies is not supported by this Berth build yet")
        }
        site.addRoute("log_append", matcher: m, handlers: [.spec(LogAppendSpec(key: key, value: value, early: early))])
    }
}

/// Caddy's `log_append` handler as configured.
package struct LogAppendSpec: HandlerSpec {
    package var key: String
    package var value: String
    package var early: Bool

    /// The values Caddy treats specially by buffering a body; Berth refuses them.
    static let bodyPlaceholders: Set<String> = [
        "{http.request.body}", "{http.request.body_base64}", "{http.response.body}", "{http.response.body_base64}",
    ]

    package var handlerName: String { "log_append" }
    package var jsonFields: [(String, JSONValue)] {
        var o: [(String, JSONValue)] = []
        if early { o.append(("early", .bool(true))) }
        if !key.isEmpty { o.append(("key", .string(key))) }
        if !value.isEmpty { o.append(("value", .string(value))) }
        return o
    }
    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        LogAppendHandler(key: key, value: value, early: early, environment: context.environment)
    }

    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        let spec = LogAppendSpec(key: try r.string("key") ?? "", value: try r.string("value") ?? "", early: try r.bool("early") ?? false)
        if bodyPlaceholders.contains(spec.value) {
            throw r.error("value", "logging request and response bodies is not supported by this Berth build yet")
        }
        return spec
    }
}

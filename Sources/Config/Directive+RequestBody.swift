import JSON
import Caddyfile
import Handlers
import HTTPCore

extension DirectiveParsers {
    /// `request_body [<matcher>] { max_size <size> }` (Caddy's `caddyhttp/requestbody`
    /// Caddyfile): the size in go-humanize's syntax (`10MB`, `1GiB`, `512`). Caddy's newer
    /// `set`, `read_timeout` and `write_timeout` are refused by name.
    static func requestBody(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        if d.nextArg() { throw d.argErr() }
        var spec = RequestBodySpec()
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            switch d.val {
            case "max_size":
                guard d.nextArg() else { throw d.argErr() }
                let v = d.val
                if d.nextArg() { throw d.argErr() }
                guard let n = ByteSize.parse(v) else {
                    // go-humanize's two errors: the number part, then the unit.
                    let number = String(v.prefix { $0.isASCII && ($0.isNumber || $0 == "." || $0 == ",") })
                        .filter { $0 != "," }
                    if Double(number) == nil {
                        throw d.err("parsing max_size: strconv.ParseFloat: parsing \"\(number)\": invalid syntax")
                    }
                    let unit = v.dropFirst(v.prefix { $0.isASCII && ($0.isNumber || $0 == "." || $0 == ",") }.count)
                    throw d.err("parsing max_size: unhandled size name: \(unit.lowercased())")
                }
                spec.maxSize = Int64(n)
            case "set", "read_timeout", "write_timeout":
                throw d.err("request_body subdirective '\(d.val)' is not supported by this Berth build yet")
            default:
                throw d.err("unrecognized request_body subdirective '\(d.val)'")
            }
        }
        site.addRoute("request_body", matcher: m, handlers: [.spec(spec)])
    }
}

/// Caddy's `request_body` handler: `{"handler":"request_body","max_size":N}` (no `max_size`
/// when unset, as Caddy's `omitempty`).
package struct RequestBodySpec: HandlerSpec {
    package var maxSize: Int64 = 0
    package var handlerName: String { "request_body" }
    package var jsonFields: [(String, JSONValue)] {
        maxSize > 0 ? [("max_size", .number(String(maxSize)))] : []
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        RequestBodyHandler(maxSize: maxSize)
    }

    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        var spec = RequestBodySpec()
        if let n = try r.int("max_size") {
            guard n >= 0 else { throw r.error("max_size", "must not be negative") }
            spec.maxSize = Int64(n)
        }
        for key in ["set", "read_timeout", "write_timeout"] where r.has(key) {
            throw r.error(key, "request_body '\(key)' is not supported by this Berth build yet")
        }
        try r.finish()
        return spec
    }
}

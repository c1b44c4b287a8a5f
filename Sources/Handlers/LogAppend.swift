import HTTPCore
import IOCore

/// Caddy's `log_append` handler (`logging/logappend.go`): adds a field to the request's
/// access-log entry. The value, as Caddy reads it:
/// - exactly one placeholder (`{…}` with a single `{`): its value, typed as Caddy's replacer
///   returns it — ports are numbers, `{http.request.duration}` seconds, `{http.vars.X}` as the
///   variable was set; an unknown placeholder or an unset variable is `null`;
/// - else the name of a request variable (`vars`): its value;
/// - else the text itself (placeholders inside longer text are not expanded).
///
/// Without `<` the value is taken when the entry is written (Caddy: after the rest of the
/// chain ran, so `{http.response.header.X}` sees the response); with `<` (`early`) now.
package final class LogAppendHandler: Handler, AccessLogFieldSource {
    enum Value: Sendable {
        case placeholder(Placeholder)
        case constantString([UInt8])
        case responseHeader(String)
        case duration(milliseconds: Bool)
        case unknown
        case variableOrConstant([UInt8])
    }

    package let logKey: [UInt8]
    let value: Value
    let early: Bool

    package init(key: String, value raw: String, early: Bool, environment: [String: String]) {
        logKey = Array(key.utf8)
        self.early = early
        if raw.hasPrefix("{") && raw.hasSuffix("}") && raw.utf8.lazy.filter({ $0 == UInt8(ascii: "{") }).count == 1 {
            // Go's strings.Trim(value, "{}").
            let name = String(raw.drop { $0 == "{" || $0 == "}" }.reversed().drop { $0 == "{" || $0 == "}" }.reversed())
            if let c = Placeholder.configTimeValue(name, environment: environment) {
                value = .constantString(Array(c.utf8))
            } else if name.hasPrefix("http.response.header.") {
                value = .responseHeader(String(name.dropFirst("http.response.header.".count)))
            } else if name == "http.request.duration" || name == "http.request.duration_ms" {
                value = .duration(milliseconds: name.hasSuffix("_ms"))
            } else if let p = Placeholder.parse(name) ?? (Template.customNames.contains(name) ? .custom(Array(name.utf8)) : nil) {
                value = .placeholder(p)
            } else {
                value = .unknown
            }
        } else {
            value = .variableOrConstant(Array(raw.utf8))
        }
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        if early {
            let s = response.scratch
            let mark = s.writerIndex
            let kind = appendLogValue(request, response, into: s)
            request.logFields.addEarly(self, kind, UnsafeRawBufferPointer(start: s.base + mark, count: s.writerIndex - mark))
            s.writerIndex = mark
        } else {
            request.logFields.addLate(self)
        }
        return .next
    }

    package func appendLogValue(_ r: HTTPRequest, _ response: HTTPResponse, into out: ByteBuffer) -> LogValueKind {
        switch value {
        case .constantString(let b):
            out.append(b)
            return .string
        case .unknown:
            return .null
        case .duration(let ms):
            let ns = Clock.monotonicNanos() &- r.startNanos
            var d = Double(Int64(bitPattern: ns)) / 1e9
            if ms { d *= 1e3 }
            LogAppendHandler.appendFloat(d, into: out)
            return .literal
        case .responseHeader(let name):
            // Go: the values of the field joined with `,`; empty when absent.
            var first = true
            for i in 0..<response.fields.count {
                response.fields.withField(i) { n, v in
                    guard !n.isEmpty, Template.equalsIgnoringCase(n, name) else { return }
                    if !first { out.append(byte: UInt8(ascii: ",")) }
                    first = false
                    out.append(v)
                }
            }
            return .string
        case .variableOrConstant(let key):
            let kind = key.withUnsafeBytes { k in r.vars.withTypedValue(k) { v, kind in out.append(v); return kind } }
            if let kind { return kind }
            out.append(key)
            return .string
        case .placeholder(let p):
            switch p {
            case .vars(let name):
                var n = name
                let kind = n.withUTF8 { k in r.vars.withTypedValue(UnsafeRawBufferPointer(k)) { v, kind in out.append(v); return kind } }
                if let kind { return kind }
                if name == "client_ip" {
                    r.connection.remote?.writeIP(into: out)
                    return .string
                }
                return .null
            case .port, .remotePort, .localPort:
                // Caddy's replacer gives these as integers when they parse.
                let mark = out.writerIndex
                _ = Placeholder.append(p, r, out, .none)
                let n = out.writerIndex - mark
                var digits = n > 0
                for k in 0..<n where !(out.base[mark + k] >= 0x30 && out.base[mark + k] <= 0x39) { digits = false }
                return digits ? .literal : .string
            default:
                return Placeholder.append(p, r, out, .none) ? .string : .null
            }
        }
    }

    /// A float as Go's JSON encoder writes a float64 (shortest form; no exponent for
    /// ordinary magnitudes).
    static func appendFloat(_ d: Double, into out: ByteBuffer) {
        var s = "\(d)"
        if s.hasSuffix(".0") { s.removeLast(2) }
        out.append(Array(s.utf8))
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import JSON
import IOCore
import Synchronization

/// The error line Caddy's server writes when a proxied request fails (`http.log.error`, level
/// `error`): one JSON object on stderr with the error text, the request and the status. Cold
/// path only (failures), so plain `String` building is fine here.
package enum ProxyLog {
    /// Writes the line for a request answered with `status` because of `message`.
    static func error(_ message: String, request: HTTPRequest, status: Int, upstream: String?) {
        var line = "{\"level\":\"error\",\"ts\":\(timestamp()),\"logger\":\"http.log.error\",\"msg\":"
        JSONValue.quote(message, into: &line)
        line += ","
        appendRequest(request, into: &line)
        line += ",\"status\":\(status)"
        if let upstream {
            line += ",\"upstream\":"
            JSONValue.quote(upstream, into: &line)
        }
        line += "}\n"
        FileIO.writeAll(2, line)
    }
}

extension ProxyLog {
    /// What a FastCGI application wrote to STDERR for one request (`capture_stderr`), as
    /// Caddy logs it when the response body closes: logger
    /// `http.reverse_proxy.transport.fastcgi`, message `stderr`, level `warn` (`error` when
    /// the status is 400 or more), the text in `body`.
    static func fastcgiStderr(_ text: [UInt8], request: HTTPRequest, status: Int) {
        var line = "{\"level\":\"\(status >= 400 ? "error" : "warn")\",\"ts\":\(timestamp()),"
        line += "\"logger\":\"http.reverse_proxy.transport.fastcgi\",\"msg\":\"stderr\","
        appendRequest(request, into: &line)
        line += ",\"body\":"
        JSONValue.quote(String(decoding: text, as: UTF8.self), into: &line)
        line += "}\n"
        FileIO.writeAll(2, line)
    }
}

/// Caddy's reverse_proxy debug lines (`http.handlers.reverse_proxy`, level `debug`: "selected
/// upstream" and "upstream roundtrip"), written only while a log takes them (the `debug`
/// global option): one relaxed atomic load per request otherwise. The request headers are
/// the ones actually sent (the encoded head is copied only in debug mode); names are
/// canonicalised as Go prints them.
package enum ProxyDebug {
    /// On while some log accepts debug entries of `logger` (the server keeps it current).
    package static let enabled = Atomic<Bool>(false)
    package static let logger = "http.handlers.reverse_proxy"
    /// Writes one line: message and the JSON fields after it (`,"k":v…`). Set once by the
    /// server at start-up (before any request).
    nonisolated(unsafe) package static var sink: (@Sendable (_ msg: String, _ fieldsJSON: String) -> Void)?

    static func selected(_ dial: String, total: Int) {
        var f = ",\"dial\":"
        JSONValue.quote(dial, into: &f)
        f += ",\"total_upstreams\":\(total)"
        sink?("selected upstream", f)
    }

    /// After the upstream's final response head: `head` is the request head as sent.
    static func roundtrip(upstream: String, nanos: UInt64, request: HTTPRequest, head: [UInt8],
                          response fields: HTTPFields, from first: Int, status: Int) {
        var f = ",\"upstream\":"
        JSONValue.quote(upstream, into: &f)
        let secs = Double(nanos) / 1e9
        f += ",\"duration\":\(secs)"
        f += ",\"request\":{\"remote_ip\":"
        JSONValue.quote(request.connection.remote?.ipString ?? "", into: &f)
        f += ",\"remote_port\":"
        JSONValue.quote(request.connection.remote.map { String($0.port) } ?? "", into: &f)
        f += ",\"client_ip\":"
        JSONValue.quote(request.vars.string("client_ip") ?? request.connection.remote?.ipString ?? "", into: &f)
        f += ",\"proto\":"
        JSONValue.quote(request.version.protoString.description, into: &f)
        // Request line and fields from the head as sent.
        var lines = head.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
            String(decoding: $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0[...], as: UTF8.self)
        }
        let requestLine = lines.isEmpty ? "" : lines.removeFirst()
        let parts = requestLine.split(separator: " ")
        var host = ""
        var pairs: [(String, String)] = []
        for l in lines {
            guard let colon = l.firstIndex(of: ":") else { continue }
            let name = String(l[..<colon])
            let value = l[l.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            if name.lowercased() == "host" {
                host = String(value)
            } else {
                pairs.append((name, String(value)))
            }
        }
        f += ",\"method\":"
        JSONValue.quote(parts.first.map(String.init) ?? "", into: &f)
        f += ",\"host\":"
        JSONValue.quote(host, into: &f)
        f += ",\"uri\":"
        JSONValue.quote(parts.count > 1 ? String(parts[1]) : "", into: &f)
        f += ",\"headers\":"
        appendHeaderMap(pairs, into: &f)
        f += "},\"headers\":"
        var resp: [(String, String)] = []
        for i in first..<fields.count {
            fields.withField(i) { n, v in
                resp.append((String(decoding: n, as: UTF8.self), String(decoding: v, as: UTF8.self)))
            }
        }
        appendHeaderMap(resp, into: &f)
        f += ",\"status\":\(status)"
        sink?("upstream roundtrip", f)
    }

    /// `{"Name":["v1","v2"],…}` in order of first appearance (Go's `http.Header` as JSON).
    static func appendHeaderMap(_ pairs: [(String, String)], into f: inout String) {
        var order: [String] = []
        var values: [String: [String]] = [:]
        for (n, v) in pairs {
            let k = canonical(n)
            if values[k] == nil { order.append(k) }
            values[k, default: []].append(v)
        }
        f += "{"
        for (i, k) in order.enumerated() {
            if i > 0 { f += "," }
            JSONValue.quote(k, into: &f)
            f += ":["
            for (j, v) in values[k]!.enumerated() {
                if j > 0 { f += "," }
                JSONValue.quote(v, into: &f)
            }
            f += "]"
        }
        f += "}"
    }

    /// Go's `CanonicalMIMEHeaderKey`: upper case after each '-' and at the start.
    static func canonical(_ name: String) -> String {
        var out = ""
        var upper = true
        for c in name {
            out.append(upper ? Character(c.uppercased()) : Character(c.lowercased()))
            upper = c == "-"
        }
        return out
    }
}

extension ProxyLog {
    /// Seconds since the epoch with microseconds, as these (cold-path) lines print `ts`.
    static func timestamp() -> String {
        let (s, ns) = Clock.realtime()
        let frac = String(ns / 1000)
        return "\(s)." + String(repeating: "0", count: max(0, 6 - frac.count)) + frac
    }

    /// `"request":{"remote_ip","method","host","uri"}` of a proxy log line.
    static func appendRequest(_ request: HTTPRequest, into line: inout String) {
        line += "\"request\":{\"remote_ip\":"
        JSONValue.quote(request.connection.remote.map { $0.ipString } ?? "", into: &line)
        line += ",\"method\":"
        JSONValue.quote(request.methodString, into: &line)
        line += ",\"host\":"
        JSONValue.quote(request.authorityRange.map { request.withLineBytes($0) { String(decoding: $0, as: UTF8.self) } } ?? "", into: &line)
        line += ",\"uri\":"
        JSONValue.quote(request.targetString, into: &line)
        line += "}"
    }
}

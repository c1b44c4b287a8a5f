#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import JSON
import IOCore

/// The error line Caddy's server writes when a proxied request fails (`http.log.error`, level
/// `error`): one JSON object on stderr with the error text, the request and the status. Cold
/// path only (failures), so plain `String` building is fine here.
package enum ProxyLog {
    /// Writes the line for a request answered with `status` because of `message`.
    static func error(_ message: String, request: HTTPRequest, status: Int, upstream: String?) {
        let (s, ns) = Clock.realtime()
        var frac = String(ns / 1000)
        frac = String(repeating: "0", count: max(0, 6 - frac.count)) + frac
        var line = "{\"level\":\"error\",\"ts\":\(s).\(frac),\"logger\":\"http.log.error\",\"msg\":"
        JSONValue.quote(message, into: &line)
        line += ",\"request\":{\"remote_ip\":"
        JSONValue.quote(request.connection.remote.map { $0.ipString } ?? "", into: &line)
        line += ",\"method\":"
        JSONValue.quote(request.methodString, into: &line)
        line += ",\"host\":"
        JSONValue.quote(request.authorityRange.map { request.withLineBytes($0) { String(decoding: $0, as: UTF8.self) } } ?? "", into: &line)
        line += ",\"uri\":"
        JSONValue.quote(request.targetString, into: &line)
        line += "},\"status\":\(status)"
        if let upstream {
            line += ",\"upstream\":"
            JSONValue.quote(upstream, into: &line)
        }
        line += "}\n"
        FileIO.writeAll(2, line)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Request placeholders a template can expand: Caddy's long names (`modules/caddyhttp/
/// replacer.go`) and the Caddyfile shorthands (`httpcaddyfile/shorthands.go`).
package enum Placeholder: Sendable, Equatable {
    case host, hostport, port, uri, path, query, queryWithMark, method, scheme
    case remoteHost, remotePort, remote, proto, protoName
    case header(String)
    case env(String)
    case uriEscaped, pathEscaped, queryEscaped
    case pathDir, pathFile, pathFileBase, pathFileExt
    case origURI, origPath, origDir, origFile, origQuery, origQueryWithMark, origMethod
    /// `{http.request.uri.query.K}`: the values of K joined with `,`.
    case queryParam(String)
    /// `{http.request.cookie.C}`: the first cookie named C (case-insensitive), empty when absent.
    case cookie(String)
    /// `{http.request.host.labels.N}`, counted from the right, lower-cased.
    case hostLabel(Int)
    /// `{http.request.uri.path.N}` / `{http.request.orig_uri.path.N}`.
    case pathSegment(Int), origPathSegment(Int)
    case localAddr, localHost, localPort
    /// `{http.vars.X}`: always known (empty when unset); `client_ip` defaults to the remote IP.
    case vars(String)
    /// A value set during the request under its full name in `HTTPRequest.vars`
    /// (`http.regexp.*`, `http.matchers.file.*`, `http.error.*`): known only once set.
    case dynamic(String)
    /// `{http.request.tls.*}`: empty on plain connections (Caddy 2.11); `version`, `cipher_suite`,
    /// `resumed`, `proto`, `proto_mutual`, `server_name`, `client.*` over TLS.
    case tls(String)
    case uuid
    case timeNowUnix, timeNowUnixMs
    /// `{time.now.http}` (IMF-fixdate), `{time.now.common_log}` (`02/Jan/2006:15:04:05 -0700`,
    /// local time), `{time.now.year}`.
    case timeNowHTTP, timeNowCommonLog, timeNowYear
    /// `{time.now}`: Go's `time.Time.String()` of the local time, as Caddy prints it —
    /// `2006-01-02 15:04:05.999999999 -0700 MST m=+1.234567890` (the `m=` part is Go's
    /// monotonic reading: seconds since the process started).
    case timeNow
    /// `{http.auth.user.id}`: the user `basic_auth` authenticated (empty otherwise).
    case authUserID
    /// A name a handler of this server defines for the request (a `map` destination): asked of
    /// `HTTPRequest.placeholderProviders`; unknown until such a handler ran.
    case custom([UInt8])

    /// Maps a placeholder name (without braces) to a placeholder, or nil when unknown.
    package static func parse(_ name: String) -> Placeholder? {
        switch name {
        case "host", "http.request.host": return .host
        case "hostport", "http.request.hostport": return .hostport
        case "port", "http.request.port": return .port
        case "uri", "http.request.uri": return .uri
        case "%uri", "http.request.uri_escaped": return .uriEscaped
        case "path", "http.request.uri.path": return .path
        case "%path", "http.request.uri.path_escaped": return .pathEscaped
        case "dir", "http.request.uri.path.dir": return .pathDir
        case "file", "http.request.uri.path.file": return .pathFile
        case "http.request.uri.path.file.base": return .pathFileBase
        case "http.request.uri.path.file.ext": return .pathFileExt
        case "query", "http.request.uri.query": return .query
        case "%query", "http.request.uri.query_escaped": return .queryEscaped
        case "?query", "http.request.uri.prefixed_query": return .queryWithMark
        case "method", "http.request.method": return .method
        case "scheme", "http.request.scheme": return .scheme
        case "remote_host", "http.request.remote.host": return .remoteHost
        case "remote_port", "http.request.remote.port": return .remotePort
        case "remote", "http.request.remote": return .remote
        case "http.request.proto": return .proto
        case "http.request.proto_name": return .protoName
        case "orig_uri", "http.request.orig_uri": return .origURI
        case "orig_path", "http.request.orig_uri.path": return .origPath
        case "orig_dir", "http.request.orig_uri.path.dir": return .origDir
        case "orig_file", "http.request.orig_uri.path.file": return .origFile
        case "orig_query", "http.request.orig_uri.query": return .origQuery
        case "orig_?query", "http.request.orig_uri.prefixed_query": return .origQueryWithMark
        case "orig_method", "http.request.orig_method": return .origMethod
        case "http.auth.user.id": return .authUserID
        case "http.request.local": return .localAddr
        case "http.request.local.host": return .localHost
        case "http.request.local.port": return .localPort
        case "client_ip": return .vars("client_ip")
        case "uuid", "http.request.uuid": return .uuid
        case "time.now": return .timeNow
        case "time.now.unix": return .timeNowUnix
        case "time.now.unix_ms": return .timeNowUnixMs
        case "time.now.http": return .timeNowHTTP
        case "time.now.common_log": return .timeNowCommonLog
        case "time.now.year": return .timeNowYear
        default: break
        }
        func suffix(_ p: String) -> String? { name.hasPrefix(p) ? String(name.dropFirst(p.count)) : nil }
        if let h = suffix("header.") ?? suffix("http.request.header.") { return .header(h) }
        if let e = suffix("env.") { return .env(e) }
        if let q = suffix("query.") ?? suffix("http.request.uri.query.") { return .queryParam(q) }
        if let c = suffix("cookie.") ?? suffix("http.request.cookie.") { return .cookie(c) }
        if let l = suffix("labels.") ?? suffix("http.request.host.labels.") {
            guard let n = Int(l), n >= 0 else { return nil }
            return .hostLabel(n)
        }
        if let p = suffix("http.request.orig_uri.path.") {
            guard let n = Int(p), n >= 0 else { return nil }
            return .origPathSegment(n)
        }
        if let p = suffix("path.") ?? suffix("http.request.uri.path.") {
            guard let n = Int(p), n >= 0 else { return nil }
            return .pathSegment(n)
        }
        if let f = suffix("file.") { return parse("http.request.uri.path.file." + f) }
        if let v = suffix("vars.") ?? suffix("http.vars.") { return .vars(v) }
        if let r = suffix("re.") { return .dynamic("http.regexp." + r) }
        if let e = suffix("err.") { return .dynamic("http.error." + e) }
        if let f = suffix("file_match.") { return .dynamic("http.matchers.file." + f) }
        if name.hasPrefix("http.regexp.") || name.hasPrefix("http.error.") || name.hasPrefix("http.matchers.file.") {
            return .dynamic(name)
        }
        if let t = suffix("http.request.tls.") { return .tls(t.lowercased()) }
        if name == "tls_cipher" { return .tls("cipher_suite") }
        if name == "tls_version" { return .tls("version") }
        return nil
    }

    /// Values resolved once at config time (`{env.*}`, `{system.*}`), or nil.
    static func configTimeValue(_ name: String, environment: [String: String]) -> String? {
        if name.hasPrefix("env.") { return environment[String(name.dropFirst(4))] ?? "" }
        switch name {
        case "system.hostname":
            var buf = [CChar](repeating: 0, count: 256)
            guard gethostname(&buf, buf.count) == 0 else { return "" }
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        case "system.os": return "linux"
        case "system.arch":
            #if arch(x86_64)
            return "amd64"
            #elseif arch(arm64)
            return "arm64"
            #else
            return ""
            #endif
        case "system.slash": return "/"
        default: return nil
        }
    }
}

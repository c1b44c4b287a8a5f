import Caddyfile
import Handlers
import IOCore

/// Caddy's placeholder shorthands (`httpcaddyfile/shorthands.go`), replaced textually in every
/// token of a site block before its directives are parsed: `{host}` becomes
/// `{http.request.host}`, `{re.name.1}` becomes `{http.regexp.name.1}`, and so on. So `adapt`
/// prints the long forms and unknown ones stay as Caddy would print them.
enum Shorthands {
    static let simple: [(String, String)] = [
        ("{host}", "{http.request.host}"), ("{hostport}", "{http.request.hostport}"), ("{port}", "{http.request.port}"),
        ("{orig_method}", "{http.request.orig_method}"), ("{orig_uri}", "{http.request.orig_uri}"),
        ("{orig_path}", "{http.request.orig_uri.path}"), ("{orig_dir}", "{http.request.orig_uri.path.dir}"),
        ("{orig_file}", "{http.request.orig_uri.path.file}"), ("{orig_query}", "{http.request.orig_uri.query}"),
        ("{orig_?query}", "{http.request.orig_uri.prefixed_query}"), ("{method}", "{http.request.method}"),
        ("{uri}", "{http.request.uri}"), ("{%uri}", "{http.request.uri_escaped}"), ("{path}", "{http.request.uri.path}"),
        ("{%path}", "{http.request.uri.path_escaped}"), ("{dir}", "{http.request.uri.path.dir}"),
        ("{file}", "{http.request.uri.path.file}"), ("{query}", "{http.request.uri.query}"),
        ("{%query}", "{http.request.uri.query_escaped}"), ("{?query}", "{http.request.uri.prefixed_query}"),
        ("{remote}", "{http.request.remote}"), ("{remote_host}", "{http.request.remote.host}"),
        ("{remote_port}", "{http.request.remote.port}"), ("{scheme}", "{http.request.scheme}"),
        ("{uuid}", "{http.request.uuid}"), ("{tls_cipher}", "{http.request.tls.cipher_suite}"),
        ("{tls_version}", "{http.request.tls.version}"), ("{tls_client_fingerprint}", "{http.request.tls.client.fingerprint}"),
        ("{tls_client_issuer}", "{http.request.tls.client.issuer}"), ("{tls_client_serial}", "{http.request.tls.client.serial}"),
        ("{tls_client_subject}", "{http.request.tls.client.subject}"),
        ("{tls_client_certificate_pem}", "{http.request.tls.client.certificate_pem}"),
        ("{tls_client_certificate_der_base64}", "{http.request.tls.client.certificate_der_base64}"),
        ("{upstream_hostport}", "{http.reverse_proxy.upstream.hostport}"), ("{client_ip}", "{http.vars.client_ip}"),
    ]

    static let complex: [(Regex, String)] = {
        let pairs: [(String, String)] = [
            (#"{header\.([\w-]*)}"#, "{http.request.header.$1}"), (#"{cookie\.([\w-]*)}"#, "{http.request.cookie.$1}"),
            (#"{labels\.([\w-]*)}"#, "{http.request.host.labels.$1}"), (#"{path\.([\w-]*)}"#, "{http.request.uri.path.$1}"),
            (#"{file\.([\w-]*)}"#, "{http.request.uri.path.file.$1}"), (#"{query\.([\w-]*)}"#, "{http.request.uri.query.$1}"),
            (#"{re\.([\w-\.]*)}"#, "{http.regexp.$1}"), (#"{vars\.([\w-]*)}"#, "{http.vars.$1}"),
            (#"{rp\.([\w-\.]*)}"#, "{http.reverse_proxy.$1}"), (#"{resp\.([\w-\.]*)}"#, "{http.intercept.$1}"),
            (#"{err\.([\w-\.]*)}"#, "{http.error.$1}"), (#"{file_match\.([\w-]*)}"#, "{http.matchers.file.$1}"),
        ]
        return pairs.map { (try! Regex($0.0), $0.1) }
    }()

    /// Applies the shorthands to every token of `segment`.
    static func apply(_ segment: Segment) -> Segment {
        var s = segment
        for i in s.tokens.indices where s.tokens[i].text.contains("{") {
            s.tokens[i].text = expand(s.tokens[i].text)
        }
        return s
    }

    /// One string: the simple replacements (Go's strings.Replacer, leftmost first), then each
    /// regexp replacement in turn.
    static func expand(_ text: String) -> String {
        var b = Array(text.utf8)
        var out: [UInt8] = []
        var i = 0
        outer: while i < b.count {
            if b[i] == UInt8(ascii: "{") {
                for (short, long) in simple {
                    let sb = short.utf8
                    if b.count - i >= sb.count && b[i..<(i + sb.count)].elementsEqual(sb) {
                        out += long.utf8
                        i += sb.count
                        continue outer
                    }
                }
            }
            out.append(b[i])
            i += 1
        }
        b = out
        for (re, repl) in complex {
            let buf = ByteBuffer(capacity: b.count + 32)
            b.withUnsafeBytes { src in Array(repl.utf8).withUnsafeBytes { r in re.replaceAll(src, with: r, into: buf) } }
            b = Array(buf.readable)
        }
        return String(decoding: b, as: UTF8.self)
    }
}

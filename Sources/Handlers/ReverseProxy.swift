import HTTPCore
import IOCore
import Upstream

/// Caddy's `reverse_proxy` handler: the engine (pools, load balancing, health checks,
/// streaming) lives in the `Upstream` module; this is its face in the handler tree.
/// The handler returns `.pending` and finishes the response later on the same loop.
package final class ReverseProxyHandler: Handler {
    package let proxy: ReverseProxy

    package init(_ configuration: ProxyConfiguration) {
        proxy = ReverseProxy(configuration)
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        proxy.handle(request, response)
    }
}

/// A `header_up` / `header_down` value with placeholders: request placeholders through
/// `Template`, plus the upstream's own (`{upstream_hostport}`,
/// `{http.reverse_proxy.upstream.hostport|host|port}`), which only exist once an upstream
/// was chosen.
package struct TemplateHeaderValue: HeaderValueSource {
    enum Segment: Sendable {
        case template(Template)
        case upstreamHostport, upstreamHost, upstreamPort
    }
    let segments: [Segment]

    package init(_ source: String, environment: [String: String] = [:]) {
        var segs: [Segment] = []
        var rest = Substring(source)
        let names: [(String, Segment)] = [
            ("{upstream_hostport}", .upstreamHostport),
            ("{http.reverse_proxy.upstream.hostport}", .upstreamHostport),
            ("{http.reverse_proxy.upstream.host}", .upstreamHost),
            ("{http.reverse_proxy.upstream.port}", .upstreamPort),
        ]
        outer: while !rest.isEmpty {
            var i = rest.startIndex
            while i < rest.endIndex {
                if rest[i] == "{" {
                    for (n, seg) in names where rest[i...].hasPrefix(n) {
                        if i > rest.startIndex {
                            segs.append(.template(Template(String(rest[rest.startIndex..<i]), keepUnknown: false, environment: environment)))
                        }
                        segs.append(seg)
                        rest = rest[rest.index(i, offsetBy: n.count)...]
                        continue outer
                    }
                }
                i = rest.index(after: i)
            }
            segs.append(.template(Template(String(rest), keepUnknown: false, environment: environment)))
            break
        }
        segments = segs
    }

    package func write(_ request: HTTPRequest, upstream: UpstreamAddress, into out: ByteBuffer) {
        for s in segments {
            switch s {
            case .template(let t): t.expand(request, into: out)
            case .upstreamHostport: out.append(string: upstream.hostport)
            case .upstreamHost:
                switch upstream.endpoint {
                case .tcp(let h, _): out.append(string: h)
                case .unix: out.append(string: upstream.dial)
                }
            case .upstreamPort:
                if case .tcp(_, let p) = upstream.endpoint { out.appendDecimal(p) }
            }
        }
    }
}

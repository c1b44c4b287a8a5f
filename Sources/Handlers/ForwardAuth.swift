import HTTPCore
import IOCore
import Upstream

/// Caddy's `forward_auth` (`reverseproxy/forwardauth/caddyfile.go`): a `reverse_proxy` that
/// asks an auth server about the request instead of forwarding it.
///
/// - The auth server gets a GET without a body for the `uri` target (Caddy's `rewrite`
///   semantics: placeholders, the client's query kept when `uri` has none), the client's
///   fields, `X-Forwarded-Method`/`X-Forwarded-Uri` (the original method and target) and the
///   usual `X-Forwarded-*` (configured as `header_up` lines by Config).
/// - 2xx: for each `copy_headers` entry the request field is deleted (clients cannot spoof it)
///   and set to the answer's values joined by `,` when the answer has a non-empty one; the
///   answer is dropped and the route walk resumes after this handler, with the request's
///   method, target and body untouched.
/// - Anything else is passed to the client as `reverse_proxy` would (a 302 to the login page,
///   a 401 with its body); upstream failures are 502/503/504 handler errors.
///
/// The subrequest runs on the request's loop like any proxied request; the walk is suspended
/// meanwhile (`request.routeSuspension`) and resumed through `PendingErrorRouter.resumeRouting`.
package final class ForwardAuthHandler: Handler {
    package let proxy: ReverseProxy

    /// `configuration.subrequest` must be a `ForwardAuthSubrequest`.
    package init(_ configuration: ProxyConfiguration) {
        proxy = ReverseProxy(configuration)
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        let r = proxy.handle(request, response)
        // The answer arrives on a later loop iteration, never inside `handle`: the walk can be
        // marked suspended now and the route lists record where they stopped on the way out.
        if case .pending = r { request.routeSuspension = [] }
        return r
    }
}

/// What `forward_auth` asks and what it copies from a 2xx answer.
package struct ForwardAuthSubrequest: ProxySubrequest {
    /// One `copy_headers` entry: the answer's field `from`, set on the request as `to`
    /// (Go's canonical form, as Caddy writes it).
    package struct Copy: Sendable, Equatable {
        package var from: String
        package var to: String
        package init(from: String, to: String) {
            self.from = from
            self.to = to
        }
    }

    let uri: RewriteHandler.URI
    let copies: [(from: [UInt8], to: String, toBytes: [UInt8], toToken: HeaderToken)]

    /// `uri` is the `uri` subdirective (placeholders in their long form); `copies` in the
    /// order Caddy runs them (sorted by the name as written).
    package init(uri: String, copies: [Copy]) {
        self.uri = RewriteHandler.URI(uri)
        self.copies = copies.map { c in
            let to = Array(c.to.utf8)
            return (Array(c.from.utf8), c.to, to, to.withUnsafeBytes { HeaderToken.classify($0) })
        }
    }

    package func writeTarget(_ request: HTTPRequest, work: ByteBuffer, into out: ByteBuffer) {
        work.clear()
        let (path, query) = RewriteHandler.buildURI(uri, request, work)
        out.append(UnsafeRawBufferPointer(start: work.base + path.lowerBound, count: path.count))
        if let q = query, !q.isEmpty {
            out.append(byte: UInt8(ascii: "?"))
            out.append(UnsafeRawBufferPointer(start: work.base + q.lowerBound, count: q.count))
        }
        work.clear()
    }

    /// Caddy's routes per entry, in order: `request_header -To`, then `request_header To
    /// {http.reverse_proxy.header.From}` unless that placeholder is empty (its value: every
    /// `From` field of the answer joined by `,`).
    package func copyFields(into request: HTTPRequest, from fields: HTTPFields, start: Int) {
        // The joined value is built in the request's scratch buffer (no temporary array or
        // String) and copied into its fields.
        let joined = request.scratch
        for c in copies {
            request.fields.remove(name: c.to)
            joined.clear()
            var found = false
            c.from.withUnsafeBytes { fb in
                for i in start..<fields.count {
                    fields.withField(i) { n, v in
                        guard ForwardAuthSubrequest.equalsIgnoringCase(n, fb) else { return }
                        if found { joined.append(byte: UInt8(ascii: ",")) }
                        joined.append(v)
                        found = true
                    }
                }
            }
            if joined.readableBytes > 0 {
                c.toBytes.withUnsafeBytes { request.fields.append(name: $0, value: joined.readable, token: c.toToken) }
            }
        }
        joined.clear()
    }

    package func proceed(_ request: HTTPRequest, _ response: HTTPResponse) {
        if let router = response.errorRouter {
            router.resumeRouting(request, response)
        } else {
            request.routeSuspension = nil
            response.sendEmpty()
        }
    }

    static func equalsIgnoringCase(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count {
            var x = a[i], y = b[i]
            if x >= 0x41 && x <= 0x5A { x |= 0x20 }
            if y >= 0x41 && y <= 0x5A { y |= 0x20 }
            if x != y { return false }
        }
        return true
    }
}

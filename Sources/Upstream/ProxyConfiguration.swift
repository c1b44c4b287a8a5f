import HTTPCore
import IOCore
import TLS

/// `transport http { … }` options (Caddy's `reverseproxy.HTTPTransport`, `httptransport.go`).
package struct TransportOptions: Sendable, Equatable {
    /// `dial_timeout` (Caddy: 3 s).
    package var dialTimeoutMilliseconds = 3000
    /// `response_header_timeout`: from the end of the request to the response head (none).
    package var responseHeaderTimeoutMilliseconds: Int? = nil
    /// `read_timeout`: longest wait for upstream bytes while reading (none).
    package var readTimeoutMilliseconds: Int? = nil
    /// `write_timeout`: longest wait for the upstream to take bytes (none).
    package var writeTimeoutMilliseconds: Int? = nil
    /// `keepalive off` disables connection reuse.
    package var keepAlive = true
    /// `keepalive <duration>`: idle time before a pooled connection is closed (Caddy: 2 min).
    package var idleTimeoutMilliseconds = 120_000
    /// `keepalive_idle_conns[_per_host]`: idle connections kept per upstream (Caddy: 32).
    /// Berth keeps this many per upstream per event loop.
    package var maxIdlePerHost = 32
    /// `max_conns_per_host` (0 = unlimited): a process-wide limit.
    package var maxConnsPerHost = 0
    /// `tls`: TLS to every upstream (also implied by `https://` upstreams).
    package var tls = false
    /// `tls_insecure_skip_verify`: no certificate or name verification.
    package var tlsInsecureSkipVerify = false
    /// `tls_server_name`: SNI and the name verified (default: the upstream's host).
    package var tlsServerName: String? = nil
    /// `tls_trusted_ca_certs <pem files…>`: trust these instead of the system store.
    package var tlsTrustedCAFiles: [String] = []
    /// `tls_client_auth <cert_file> <key_file>`: the client certificate sent when asked.
    package var tlsClientCertificateFile: String? = nil
    package var tlsClientKeyFile: String? = nil
    /// `tls_timeout`: longest TLS handshake with an upstream (Caddy: none; Berth without it:
    /// `dial_timeout` again, counted from the end of the TCP connect).
    package var tlsTimeoutMilliseconds: Int? = nil
    /// `tls_except_ports`: upstream ports spoken to in plaintext even though TLS is on.
    package var tlsExceptPorts: [String] = []

    package init() {}
}

/// The client TLS of one `reverse_proxy` (built once by Config: the context loads trust roots
/// and the client certificate; connections share it across loops).
package struct UpstreamTLS: Sendable {
    package let context: TLSContext
    /// `tls_server_name`, or nil to use each upstream's host.
    package let serverName: String?

    package init(context: TLSContext, serverName: String?) {
        self.context = context
        self.serverName = serverName
    }

    /// Builds the context for `t`: ALPN `http/1.1`, the system trust store unless
    /// `tls_trusted_ca_certs` names PEM files, no verification with
    /// `tls_insecure_skip_verify`, the client certificate of `tls_client_auth`.
    package static func make(_ t: TransportOptions) throws(TLSError) -> UpstreamTLS {
        var c = TLSClientConfiguration(trustRoots: .system, applicationProtocols: [.http11])
        if t.tlsInsecureSkipVerify {
            c.trustRoots = .insecureNoVerification
        } else if !t.tlsTrustedCAFiles.isEmpty {
            var pem: [UInt8] = []
            for f in t.tlsTrustedCAFiles {
                do {
                    pem += try FileIO.readAll(f)
                } catch {
                    throw TLSError(.configuration, "tls_trusted_ca_certs: cannot read \(f): \(error)")
                }
                pem.append(0x0A)
            }
            c.trustRoots = .pem(pem)
        }
        if let cf = t.tlsClientCertificateFile, let kf = t.tlsClientKeyFile {
            c.certificate = try TLSCertificate(certificateFile: cf, keyFile: kf)
        }
        return UpstreamTLS(context: try TLSContext(client: c), serverName: t.tlsServerName)
    }
}

/// Load-balancing selection policy (`lb_policy`, Caddy's `selectionpolicies.go`).
package enum SelectionPolicy: Sendable, Equatable {
    case random
    case randomChoose(Int)
    case roundRobin
    case leastConn
    case first
    case ipHash
    case clientIPHash
    case uriHash
    case query(String)
    case header(String)
    /// `cookie [name [secret]]`: sticky sessions through a cookie (default `lb`).
    case cookie(name: String, secret: String?)

    /// Caddy's `policy` name.
    package var name: String {
        switch self {
        case .random: return "random"
        case .randomChoose: return "random_choose"
        case .roundRobin: return "round_robin"
        case .leastConn: return "least_conn"
        case .first: return "first"
        case .ipHash: return "ip_hash"
        case .clientIPHash: return "client_ip_hash"
        case .uriHash: return "uri_hash"
        case .query: return "query"
        case .header: return "header"
        case .cookie: return "cookie"
        }
    }
}

/// Active and passive health checks (`healthchecks.go`).
package struct HealthOptions: Sendable {
    /// `health_uri` (active checks run when this or `health_port` is set).
    package var uri: String? = nil
    package var port: Int? = nil
    /// `health_interval` (Caddy: 30 s) and `health_timeout` (5 s).
    package var intervalMilliseconds = 30_000
    package var timeoutMilliseconds = 5_000
    /// `health_status`: `2xx` style (one digit + `xx`) or an exact code; nil = any 2xx.
    package var expectStatus: Int? = nil
    /// `health_body`: the body must match (regexp compiled by Handlers).
    package var bodyMatcher: (@Sendable ([UInt8]) -> Bool)? = nil
    /// `health_headers` to send (name, value).
    package var headers: [(String, String)] = []
    /// Passive: `fail_duration` (0 = passive checks off), `max_fails` (1),
    /// `unhealthy_status` codes (a 1-digit entry like 5 means 5xx), `unhealthy_latency`.
    package var failDurationMilliseconds = 0
    package var maxFails = 1
    package var unhealthyStatus: [Int] = []
    package var unhealthyLatencyMilliseconds: Int? = nil
    /// `unhealthy_request_count`: most requests in flight before an upstream counts as busy.
    package var unhealthyRequestCount = 0

    package init() {}

    /// True when active checks are configured.
    package var activeEnabled: Bool { uri != nil || port != nil }

    /// True when `status` counts as a passive failure.
    package func isUnhealthyStatus(_ status: Int) -> Bool {
        for s in unhealthyStatus {
            if s < 10 ? status / 100 == s : status == s { return true }
        }
        return false
    }
}

/// A proxy that asks instead of forwarding (Caddy's `forward_auth`, a `reverse_proxy` with
/// `rewrite { method GET; uri … }` and a `handle_response` for 2xx): the upstream gets a GET
/// without a body for a rewritten target and the client's fields; a 2xx answer lets the
/// request go on (with fields copied from the answer), any other answer is the response.
package protocol ProxySubrequest: Sendable {
    /// Appends the upstream request's target (origin-form, already escaped) for `request` to
    /// `out`; `work` is scratch space (left cleared).
    func writeTarget(_ request: HTTPRequest, work: ByteBuffer, into out: ByteBuffer)
    /// The upstream answered 2xx: `fields` holds its header fields from index `start` on.
    /// Copies what the request should carry on (`copy_headers`).
    func copyFields(into request: HTTPRequest, from fields: HTTPFields, start: Int)
    /// After `copyFields`, once the exchange let go of the request (its body untouched and
    /// nothing sent): continues the request, on its loop (the route walk resumes).
    func proceed(_ request: HTTPRequest, _ response: HTTPResponse)
}

/// Everything one `reverse_proxy` needs at run time.
package struct ProxyConfiguration: Sendable {
    package var upstreams: [UpstreamAddress] = []
    package var transport = TransportOptions()
    package var policy: SelectionPolicy = .random
    /// `lb_retries`: extra attempts after the first (0).
    package var retries = 0
    /// `lb_try_duration`: keep retrying for this long (0 = off).
    package var tryDurationMilliseconds = 0
    /// `lb_try_interval` (250 ms).
    package var tryIntervalMilliseconds = 250
    package var health = HealthOptions()
    /// `header_up` / `header_down`.
    package var requestHeaderOps: [HeaderOperation] = []
    package var responseHeaderOps: [HeaderOperation] = []
    /// `trusted_proxies`: peers whose X-Forwarded-* are kept (appended to).
    package var trustedProxies: [IPNetwork] = []
    /// `flush_interval` in ms (-1 = flush at once). Berth always writes through at once.
    package var flushIntervalMilliseconds: Int? = nil
    /// TLS to the upstreams (`https://`, `transport http { tls … }`), nil for plain HTTP.
    package var tls: UpstreamTLS? = nil
    /// Value of the `Via` header this proxy adds (`1.1 Berth`), without the protocol prefix.
    package var viaName = "Berth"
    /// `transport fastcgi { … }`: the upstreams are FastCGI responders (php-fpm), nil for HTTP.
    package var fastcgi: FastCGIOptions? = nil
    /// Set for `forward_auth`: the request is asked about, not forwarded.
    package var subrequest: (any ProxySubrequest)? = nil

    package init() {}
}

import Caddyfile
import Config
import Handlers
import HTTPCore
import IOCore
import Testing

@testable import Upstream

/// `reverse_proxy` from Caddyfile to the runtime configuration.
@Suite("reverse_proxy directive")
struct ReverseProxyDirectiveTests {
    func proxy(_ block: String) throws -> ReverseProxy {
        let text = "http://a.example {\n\treverse_proxy \(block)\n}\n"
        let config = try CaddyfileAdapter.adapt(Array(text.utf8), filename: "Caddyfile", environment: ["UP": "10.0.0.9:7"])
        let handler = try RuntimeBuilder.buildServerHandler(config.servers[0], context: BuildContext(environment: [:]))
        return try #require(find(handler.routes.routes))
    }

    private func find(_ routes: [Route]) -> ReverseProxy? {
        for r in routes {
            for h in r.handlers {
                if let p = h as? ReverseProxyHandler { return p.proxy }
                if let l = h as? RouteList, let p = find(l.routes) { return p }
            }
        }
        return nil
    }

    @Test func upstreamsAndDefaults() throws {
        let p = try proxy("whoami:80 localhost:8001-8002 unix//run/a.sock {$UP}")
        let c = p.configuration
        #expect(c.upstreams.map(\.dial) == ["whoami:80", "localhost:8001", "localhost:8002", "unix//run/a.sock", "10.0.0.9:7"])
        #expect(c.policy == .random && c.retries == 0 && c.tryDurationMilliseconds == 0)
        #expect(c.transport.dialTimeoutMilliseconds == 3000 && c.transport.maxIdlePerHost == 32)
        #expect(c.transport.idleTimeoutMilliseconds == 120_000 && c.transport.responseHeaderTimeoutMilliseconds == nil)
        #expect(!c.health.activeEnabled && c.health.failDurationMilliseconds == 0)
        #expect(p.hosts.count == 5)
    }

    @Test func subdirectives() throws {
        let p = try proxy("""
            {
            		to 127.0.0.1:1
            		lb_policy header X-User
            		lb_retries 3
            		lb_try_interval 50ms
            		health_uri /hz
            		health_port 9999
            		health_status 204
            		health_body ^ok$
            		fail_duration 10s
            		max_fails 2
            		unhealthy_status 5xx
            		unhealthy_latency 2s
            		trusted_proxies private_ranges
            		transport http {
            			dial_timeout 1s
            			read_timeout 5s
            			write_timeout 6s
            			keepalive off
            		}
            	}
            """)
        let c = p.configuration
        #expect(c.policy == .header("X-User") && c.retries == 3 && c.tryIntervalMilliseconds == 50)
        #expect(c.health.uri == "/hz" && c.health.port == 9999 && c.health.expectStatus == 204)
        #expect(c.health.bodyMatcher?(Array("ok".utf8)) == true && c.health.bodyMatcher?(Array("no".utf8)) == false)
        #expect(c.health.failDurationMilliseconds == 10_000 && c.health.maxFails == 2)
        #expect(c.health.isUnhealthyStatus(503) && !c.health.isUnhealthyStatus(404))
        #expect(c.health.unhealthyLatencyMilliseconds == 2000)
        #expect(c.trustedProxies.contains { $0.contains(SocketAddress(ip: "10.1.1.1", port: 0)!) })
        #expect(c.transport.dialTimeoutMilliseconds == 1000 && !c.transport.keepAlive)
        #expect(c.transport.readTimeoutMilliseconds == 5000 && c.transport.writeTimeoutMilliseconds == 6000)
    }

    @Test func headerTemplates() throws {
        let p = try proxy("""
            127.0.0.1:8080 {
            		header_up Host {upstream_hostport}
            		header_up X-Orig {host}{uri}
            		header_up X-Up-Port {http.reverse_proxy.upstream.port}
            	}
            """)
        let r = makeRequest("GET", "/p?q=1", host: "a.example")
        var f = HTTPFields()
        RequestHead.buildFields(r, p.configuration, upstream: p.hosts[0].address, upgrade: nil, into: &f, scratch: ByteBuffer())
        #expect(f.value(.host) == "127.0.0.1:8080")
        #expect(f.value(named: "X-Orig") == "a.example/p?q=1")
        #expect(f.value(named: "X-Up-Port") == "8080")
    }

    @Test func fastcgiTransport() throws {
        let p = try proxy("unix//run/php.sock {\ntransport fastcgi {\nroot /srv\nsplit .PHP .php5\nenv A b\nenv A c\nread_timeout 2s\nwrite_timeout 3s\ndial_timeout 1s\ncapture_stderr\nresolve_root_symlink\n}\n}")
        let c = p.configuration
        let f = try #require(c.fastcgi)
        #expect(f.splitPath == [Array(".php".utf8), Array(".php5".utf8)])
        #expect(f.env.map { String(decoding: $0.name, as: UTF8.self) } == ["A"])
        #expect(f.captureStderr && f.resolveRootSymlink)
        #expect(!c.transport.keepAlive)
        #expect(c.transport.dialTimeoutMilliseconds == 1000 && c.transport.readTimeoutMilliseconds == 2000
            && c.transport.writeTimeoutMilliseconds == 3000)
        #expect(c.upstreams.map(\.dial) == ["unix//run/php.sock"])
    }

    @Test(arguments: [
        ("http://x https://y", "upstream address scheme is HTTP but transport is configured for HTTP+TLS (HTTPS)"),
        ("http://x {\ntransport http {\ntls\n}\n}", "upstream address scheme is HTTP but transport is configured for HTTP+TLS (HTTPS)"),
        ("x {\ntransport http {\ntls_client_auth some.name\n}\n}", "tls_client_auth with an automated certificate name is not supported"),
        ("x {\ntransport http {\ntls_trusted_ca_certs /nonexistent/ca.pem\n}\n}", "tls_trusted_ca_certs: no such file '/nonexistent/ca.pem'"),
        ("x {\ntransport other\n}", "reverse_proxy transport 'other' is not supported by this Berth build yet"),
        ("x {\ntransport fastcgi {\nkeep_conn\n}\n}", "unrecognized subdirective keep_conn"),
        ("x {\ntransport fastcgi {\nsplit\n}\n}", "wrong argument count"),
        ("x {\ntransport fastcgi {\nenv A\n}\n}", "wrong argument count"),
        ("x {\ntransport fastcgi {\nread_timeout soon\n}\n}", "bad duration value 'soon'"),
        ("x {\ntransport fastcgi\ntransport http\n}", "transport already specified"),
        ("x {\nlb_policy weird\n}", "unrecognized lb_policy 'weird'"),
        ("x {\nheader_up\n}", "wrong argument count"),
        ("x:99999", "invalid port"),
        ("x {\nhealth_status abc\n}", "bad status value 'abc'"),
    ])
    func errors(_ block: String, _ message: String) {
        do {
            _ = try proxy(block)
            Issue.record("accepted \(block)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
        }
    }
}

import Foundation
import JSON
import Testing

@testable import Config
@testable import Handlers

/// The `forward_auth` directive: its subdirectives (`uri`, every `copy_headers` form, the
/// reverse_proxy ones), errors with `file:line`, Caddy's JSON shape, and that Berth's JSON reader
/// takes that shape back and nothing else.
@Suite struct ForwardAuthConfigTests {
    func adapt(_ body: String) throws -> BerthConfig {
        try CaddyfileAdapter.adapt(Array(("http://a.test {\n" + body + "\n}\n").utf8), filename: "Caddyfile", environment: [:])
    }

    func spec(_ body: String) throws -> ForwardAuthSpec {
        let c = try adapt(body)
        var found: ForwardAuthSpec? = nil
        func walk(_ routes: [RouteConfig]) {
            for r in routes {
                for h in r.handle {
                    switch h {
                    case .spec(let s): if let f = s as? ForwardAuthSpec { found = f }
                    case .subroute(let inner): walk(inner)
                    }
                }
            }
        }
        walk(try #require(c.servers.first).routes)
        return try #require(found)
    }

    func error(_ body: String) -> String? {
        do {
            _ = try adapt(body)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func copyHeadersForms() throws {
        let s = try spec("""
            forward_auth localhost:9091 {
                uri /verify
                copy_headers Remote-User Remote-Groups>X-Groups
                copy_headers {
                    remote-email Remote-Name>x-name
                    Remote-User>X-User
                }
            }
            """)
        // Sorted by the name as written (byte order: upper case first), names canonical, a
        // name given twice keeps its last target.
        #expect(s.copies == [.init(from: "Remote-Groups", to: "X-Groups"), .init(from: "Remote-Name", to: "X-Name"),
                             .init(from: "Remote-User", to: "X-User"), .init(from: "Remote-Email", to: "Remote-Email")])
        #expect(s.uri == "/verify")
        #expect(s.proxy.upstreams.map(\.dial) == ["localhost:9091"])
    }

    @Test func forwardedHeadersAndUserOverrides() throws {
        let plain = try spec("forward_auth localhost:9091 {\n uri /v\n}")
        #expect(plain.proxy.headerUp.map(\.field) == ["X-Forwarded-Method", "X-Forwarded-Uri"])
        #expect(plain.proxy.headerUp.map(\.args) == [["{http.request.method}"], ["{http.request.uri}"]])
        let over = try spec("forward_auth localhost:9091 {\n uri /v\n header_up x-forwarded-uri /x{uri}\n header_up +X-Forwarded-Method more\n}")
        #expect(over.proxy.headerUp.map(\.field) == ["X-Forwarded-Method", "x-forwarded-uri", "+X-Forwarded-Method"])
    }

    @Test func placeholdersInUriUseTheLongForm() throws {
        let s = try spec("forward_auth localhost:9091 {\n uri /v?rd={scheme}://{host}{uri}\n}")
        #expect(s.uri == "/v?rd={http.request.scheme}://{http.request.host}{http.request.uri}")
    }

    @Test func matcherAndReverseProxySubdirectives() throws {
        let c = try adapt("""
            forward_auth /admin/* a:1 b:2 {
                uri /v
                lb_policy round_robin
                health_uri /health
                transport http {
                    dial_timeout 1s
                }
            }
            """)
        let json = c.json.serialized(pretty: false)
        #expect(json.contains(#"{"match":[{"path":["/admin/*"]}],"handle":[{"handle_response":"#))
        #expect(json.contains(#""load_balancing":{"selection_policy":{"policy":"round_robin"}}"#))
        #expect(json.contains(#""rewrite":{"method":"GET","uri":"/v"}"#))
    }

    @Test func errorsNameFileAndLine() {
        #expect(error("forward_auth localhost:9091 {\n copy_headers A\n}") == "the 'uri' subdirective is required, at Caddyfile:2")
        #expect(error("forward_auth localhost:9091") == "the 'uri' subdirective is required, at Caddyfile:2")
        #expect(error("forward_auth localhost:9091 {\n uri /a\n uri /b\n}") == "cannot re-declare uri: /b, at Caddyfile:4")
        #expect(error("forward_auth localhost:9091 {\n uri\n}") == "wrong argument count or unexpected line ending after 'uri', at Caddyfile:3")
        #expect(error("forward_auth localhost:9091 {\n uri /a /b\n}") == "wrong argument count or unexpected line ending after '/b', at Caddyfile:3")
        #expect(error("forward_auth localhost:9091 {\n uri /a\n copy_headers\n}") == "wrong argument count or unexpected line ending after 'copy_headers', at Caddyfile:4")
        #expect(error("forward_auth localhost:9091 {\n uri /a\n copy_headers A>B>C\n}") == "copy_headers: 'A>B>C' is not a header field or a From>To rename, at Caddyfile:4")
        #expect(error("forward_auth localhost:9091 {\n uri /a\n copy_headers {\n  >B\n }\n}") == "copy_headers: '>B' is not a header field or a From>To rename, at Caddyfile:5")
        #expect(error("forward_auth localhost:9091 {\n uri /a\n nonsense\n}") == "unrecognized subdirective nonsense, at Caddyfile:4")
        #expect(error("forward_auth localhost:9091 {\n uri /a\n handle_response\n}")?.contains("not supported by this Berth build yet, at Caddyfile:4") == true)
        #expect(error("forward_auth @nope localhost:9091 {\n uri /a\n}") == "unrecognized named matcher: @nope, at Caddyfile:2")
    }

    /// Berth's JSON of a forward_auth, decoded with one part changed.
    func decodeError(_ edit: (String) -> String) throws -> String? {
        let c = try adapt("forward_auth localhost:9091 {\n uri /v\n copy_headers Remote-User A>B\n}")
        let text = edit(c.json.serialized(pretty: false))
        do {
            _ = try JSONConfigDecoder.decode(Array(text.utf8), filename: "x.json")
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func jsonReaderTakesOnlyForwardAuthsShape() throws {
        #expect(try decodeError { $0 } == nil)
        #expect(try decodeError { $0.replacingOccurrences(of: #""status_code":[2]"#, with: #""status_code":[2,3]"#) }?
            .contains("status_code [2]") == true)
        #expect(try decodeError { $0.replacingOccurrences(of: #""method":"GET""#, with: #""method":"HEAD""#) }?
            .contains("method GET") == true)
        #expect(try decodeError { $0.replacingOccurrences(of: #"{"delete":["B"]}"#, with: #"{"delete":["C"]}"#) }?
            .contains("set of the deleted field C") == true)
        #expect(try decodeError { $0.replacingOccurrences(of: #""{http.reverse_proxy.header.A}":[""]"#, with: #""{http.reverse_proxy.header.Z}":[""]"#) }?
            .contains("(vars {http.reverse_proxy.header.A})") == true)
        #expect(try decodeError { $0.replacingOccurrences(of: #"{"handle":[{"handler":"vars"}]},"#, with: "") }?
            .contains("handle_response") == true)
    }
}

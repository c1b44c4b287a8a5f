import Config
import Testing

@testable import Server

/// `berth systemd-units`: the derivation of socket units from a Caddyfile's listeners, and the
/// units rendered from it.
@Suite struct SystemdUnitsTests {
    func config(_ text: String) throws -> BerthConfig {
        try CaddyfileAdapter.adapt(Array(text.utf8), filename: "Caddyfile", environment: [:])
    }

    func plan(_ text: String, name: String = "caddy") throws -> SystemdUnits.Plan {
        try SystemdUnits.plan(try config(text), name: name)
    }

    /// The error the derivation fails with.
    func planError(_ text: String) throws -> String {
        let c = try config(text)
        do {
            _ = try SystemdUnits.plan(c, name: "caddy")
        } catch {
            return error.description
        }
        Issue.record("no error for:\n\(text)")
        return ""
    }

    func files(_ text: String, _ edit: (inout SystemdUnits.Options) -> Void = { _ in }) throws -> [String: String] {
        var o = SystemdUnits.Options(configPath: "/etc/berth/Caddyfile", binary: "/usr/local/bin/berth")
        edit(&o)
        let fs = try SystemdUnits.render(try plan(text, name: o.name), o)
        return Dictionary(uniqueKeysWithValues: fs.map { ($0.name, $0.text) })
    }

    /// The `Key=value` lines of a unit (comments and sections dropped).
    func lines(_ unit: String?, _ key: String) -> [String] {
        (unit ?? "").split(separator: "\n").map(String.init).filter { $0.hasPrefix(key + "=") }
            .map { String($0.dropFirst(key.count + 1)) }
    }

    func listens(_ unit: String?) -> [String] {
        (unit ?? "").split(separator: "\n").map(String.init).filter { $0.hasPrefix("Listen") }
    }

    // MARK: order and ports

    /// Seed Example 3: fd 3, 4, 5 in number order, ports from the site scheme.
    @Test func example3OrderAndPorts() throws {
        let f = try files("""
            {
            \tadmin unix//run/admin.sock
            \tauto_https disable_redirects
            }
            https://example.com {
            \tbind fdgram/5 {
            \t\tprotocols h3
            \t}
            \tbind fd/4 {
            \t\tprotocols h1 h2
            \t}
            \trespond "hi"
            }
            http://example.com {
            \tbind fd/3
            \trespond "hi"
            }
            """)
        #expect(listens(f["caddy.socket"]) == ["ListenStream=[::]:80", "ListenStream=[::]:443", "ListenDatagram=[::]:443"])
        #expect(lines(f["caddy.socket"], "BindIPv6Only") == ["both"])
        #expect(f["caddy.socket"]?.contains("# fd/3: http://example.com; bind at Caddyfile:15") == true)
    }

    /// Seed Example 4: `default_bind fd/4` and `fdgram/5` for bare hosts (HTTPS, 443), `fd/3`
    /// for `http://`; the sites Berth binds itself do not go into the socket unit but need a
    /// network.
    @Test func defaultBindAndOwnListeners() throws {
        let p = try plan("""
            {
            \tdefault_bind fd/4 {
            \t\tprotocols h1 h2
            \t}
            \tdefault_bind fdgram/5 {
            \t\tprotocols h3
            \t}
            \tauto_https disable_redirects
            \tlocal_certs
            }
            http:// {
            \tbind fd/3 {
            \t\tprotocols h1
            \t}
            \tredir https://{host}{uri}
            }
            static.example.com {
            \trespond "s"
            }
            http://static.example.com {
            \tbind 0.0.0.0 {
            \t\tprotocols h1
            \t}
            \trespond "s"
            }
            """)
        let unit = try #require(p.socketUnits.first)
        #expect(p.socketUnits.count == 1)
        #expect(unit.sockets.map(\.bind) == ["fd/3", "fd/4", "fdgram/5"])
        #expect(unit.sockets.map(\.port) == [80, 443, 443])
        #expect(unit.sockets.map(\.datagram) == [false, false, true])
        #expect(unit.sockets[1].uses[0].origin == .defaultBind)
        #expect(unit.sockets[1].uses[0].location.line == 2)
        #expect(p.networkReasons == ["http://static.example.com listens on 0.0.0.0:80 itself (bind at Caddyfile:21)"])
        #expect(p.privilegedOwnAddresses == ["0.0.0.0:80"])
        var o = SystemdUnits.Options(configPath: "/c/Caddyfile", binary: "/b")
        let q = try #require(try SystemdUnits.render(p, o).first { $0.name == "caddy.container" }?.text)
        #expect(lines(q, "AddCapability") == ["CAP_NET_BIND_SERVICE"] && lines(q, "Network").isEmpty)
        o.service = true
        let s = try #require(try SystemdUnits.render(p, o).first { $0.name == "caddy.service" }?.text)
        #expect(lines(s, "AmbientCapabilities") == ["CAP_NET_BIND_SERVICE"] && lines(s, "PrivateNetwork").isEmpty)
    }

    @Test func explicitPortsAndHTTPPortOption() throws {
        let p = try plan("""
            {
            \thttp_port 8080
            }
            http://a.example {
            \tbind fd/3
            \trespond "a"
            }
            b.example:8443 {
            \tbind fd/4
            \ttls internal
            \trespond "b"
            }
            """)
        #expect(p.socketUnits[0].sockets.map(\.port) == [8080, 8443])
    }

    @Test func portMappingKeepsOrder() throws {
        let f = try files("""
            http://a.example {
            \tbind fd/3
            \trespond "a"
            }
            https://a.example {
            \tbind fd/4
            \tbind fdgram/5
            \ttls internal
            \trespond "a"
            }
            """) { $0.ports = [80: 8080, 443: 8443] }
        #expect(listens(f["caddy.socket"]) == ["ListenStream=[::]:8080", "ListenStream=[::]:8443", "ListenDatagram=[::]:8443"])
        #expect(f["caddy.socket"]?.contains("(Caddyfile port 80)") == true)
    }

    // MARK: numbered fd errors

    @Test func gapInFdNumbersNamesTheLine() throws {
        let e = try planError("""
            http://a.example {
            \tbind fd/3
            \trespond "a"
            }
            http://b.example:81 {
            \tbind fd/5
            \trespond "b"
            }
            """)
        #expect(e.contains("fd/5 leaves fd/4 unused"), "\(e)")
        #expect(e.hasSuffix(", at Caddyfile:6"), "\(e)")
    }

    @Test func fdsMustStartAtThree() throws {
        let e = try planError("http://a.example {\n\tbind fd/4\n\trespond \"a\"\n}\n")
        #expect(e.contains("fd/4 leaves fd/3 unused") && e.hasSuffix("at Caddyfile:2"), "\(e)")
        let e2 = try planError("http://a.example {\n\tbind fd/2\n\trespond \"a\"\n}\n")
        #expect(e2.contains("fd/2: file descriptors 0–2") && e2.hasSuffix("at Caddyfile:2"), "\(e2)")
    }

    @Test func oneFdWithTwoPortsIsRefused() throws {
        let e = try planError("""
            http://a.example {
            \tbind fd/3
            \trespond "a"
            }
            http://b.example:8080 {
            \tbind fd/3
            \trespond "b"
            }
            """)
        #expect(e.contains("fd/3 serves http://b.example:8080 on port 8080 but also http://a.example on port 80 (Caddyfile:2)"), "\(e)")
        #expect(e.hasSuffix("at Caddyfile:6"), "\(e)")
    }

    @Test func streamAndDatagramOnOneNumberIsRefused() throws {
        let e = try planError("""
            https://a.example {
            \tbind fd/3
            \tbind fdgram/3
            \ttls internal
            \trespond "a"
            }
            """)
        #expect(e.contains("fdgram/3 and fd/3 (Caddyfile:2) both claim file descriptor 3"), "\(e)")
        #expect(e.hasSuffix("at Caddyfile:3"), "\(e)")
    }

    @Test func numbersAndNamesDoNotMix() throws {
        let e = try planError("""
            http://a.example {
            \tbind fd/3
            \trespond "a"
            }
            http://b.example {
            \tbind fdname/web
            \trespond "b"
            }
            """)
        #expect(e.contains("fdname/web and fd/3 (Caddyfile:2)") && e.hasSuffix("at Caddyfile:6"), "\(e)")
    }

    @Test func nothingInheritedIsRefused() throws {
        let e = try planError(":8080 {\n\trespond \"a\"\n}\n")
        #expect(e.contains("nothing to socket-activate") && e.hasSuffix("at Caddyfile:1"), "\(e)")
        let empty = try planError("{\n\tadmin off\n}\n")
        #expect(empty == "nothing to socket-activate: Caddyfile has no site", "\(empty)")
    }

    @Test func jsonConfigsAreRefused() throws {
        var c = try config("http://a.example {\n\tbind fd/3\n\trespond \"a\"\n}\n")
        c.listenerUses = []
        #expect(throws: ConfigError.self) { try SystemdUnits.plan(c, name: "caddy") }
    }

    // MARK: named fds

    @Test func namedSocketsGetOneUnitPerName() throws {
        let f = try files("""
            http://a.example {
            \tbind fdname/http
            \trespond "a"
            }
            https://a.example {
            \tbind fdname/https fdgramname/https
            \ttls internal
            \trespond "a"
            }
            """) { $0.name = "web" }
        let http = try #require(f["web-http.socket"])
        let https = try #require(f["web-https.socket"])
        #expect(listens(http) == ["ListenStream=[::]:80"])
        #expect(listens(https) == ["ListenStream=[::]:443", "ListenDatagram=[::]:443"])
        #expect(lines(https, "FileDescriptorName") == ["https"] && lines(https, "Service") == ["web.service"])
        #expect(f["web.socket"] == nil)
        let q = try #require(f["web.container"])
        #expect(lines(q, "Requires") == ["web-http.socket web-https.socket"])
        #expect(lines(q, "Sockets") == ["web-http.socket web-https.socket"])
    }

    @Test func namedIndicesRunFromZero() throws {
        let p = try plan("""
            https://a.example:443 {
            \tbind fdname/tls/1
            \ttls internal
            \trespond "a"
            }
            https://a.example:8443 {
            \tbind fdname/tls/0
            \ttls internal
            \trespond "a"
            }
            """)
        #expect(p.socketUnits[0].sockets.map(\.port) == [8443, 443])
        let e = try planError("""
            https://a.example {
            \tbind fdname/tls/1
            \ttls internal
            \trespond "a"
            }
            """)
        #expect(e.contains("fdname/tls/1 leaves index 0 of that name unused") && e.hasSuffix("at Caddyfile:2"), "\(e)")
    }

    @Test func namedSocketErrors() throws {
        let ports = try planError("""
            https://a.example {
            \tbind fdname/tls
            \ttls internal
            \trespond "a"
            }
            https://b.example:8443 {
            \tbind fdname/tls
            \ttls internal
            \trespond "b"
            }
            """)
        #expect(ports.contains("fdname/tls serves https://b.example:8443 on port 8443 but also https://a.example on port 443 (Caddyfile:2)"), "\(ports)")
        #expect(ports.hasSuffix("at Caddyfile:7"), "\(ports)")
        let mixed = try planError("""
            https://a.example {
            \tbind fdname/tls
            \ttls internal
            \trespond "a"
            }
            https://b.example {
            \tbind fdname/tls/0
            \ttls internal
            \trespond "b"
            }
            """)
        #expect(mixed.contains("takes every socket of that name") && mixed.hasSuffix("at Caddyfile:2"), "\(mixed)")
    }

    // MARK: the container

    @Test func staticSiteGetsNetworkNoneAndHardening() throws {
        let f = try files("""
            {
            \tadmin unix//run/admin.sock
            }
            http://localhost {
            \tbind fd/3
            \trespond "Hello"
            }
            """)
        let q = try #require(f["caddy.container"])
        #expect(lines(q, "Network") == ["none"])
        for (k, v) in [("Notify", "true"), ("ReadOnly", "true"), ("NoNewPrivileges", "true"), ("DropCapability", "all"),
                       ("ContainerName", "caddy"), ("Image", "localhost/berth:latest"),
                       ("Exec", "/usr/bin/caddy run --config /etc/caddy/Caddyfile")] {
            #expect(lines(q, k) == [v], "\(k)")
        }
        #expect(lines(q, "Volume") == ["/etc/berth:/etc/caddy:Z,ro"])
        #expect(lines(q, "ExecReload") == ["podman exec caddy /usr/bin/caddy reload --config /etc/caddy/Caddyfile --address unix//run/admin.sock --force"])
        #expect(lines(q, "Requires") == ["caddy.socket"] && lines(q, "After") == ["caddy.socket"])
        #expect(lines(q, "Environment").isEmpty)
        #expect(f["caddy_data.volume"] == nil)
    }

    @Test func reloadBySignalWithoutAdminSocket() throws {
        let f = try files("http://localhost {\n\tbind fd/3\n\trespond \"a\"\n}\n") { $0.exitIdle = "10m" }
        #expect(lines(f["caddy.container"], "ExecReload") == ["podman kill --signal HUP caddy"])
        #expect(lines(f["caddy.container"], "AddCapability").isEmpty)
        #expect(lines(f["caddy.container"], "Environment") == ["BERTH_EXIT_IDLE=10m"])
    }

    @Test func reverseProxyToTCPNeedsANetwork() throws {
        let text = """
            http://a.example {
            \tbind fd/3
            \treverse_proxy whoami:80
            }
            """
        let f = try files(text)
        #expect(lines(f["caddy.container"], "Network").isEmpty)
        #expect(f["caddy.container"]?.contains("reverse_proxy dials whoami:80") == true)
        #expect(lines(try files(text) { $0.network = "mynet.network" }["caddy.container"], "Network") == ["mynet.network"])
        var o = SystemdUnits.Options(configPath: "/c/Caddyfile", binary: "/b")
        o.network = "none"
        #expect(throws: ConfigError.self) { try SystemdUnits.render(try plan(text), o) }
        // A unix upstream needs none.
        let unix = try files("http://a.example {\n\tbind fd/3\n\treverse_proxy unix//run/app.sock\n}\n")
        #expect(lines(unix["caddy.container"], "Network") == ["none"])
    }

    @Test func certificatesNeedState() throws {
        let acme = try plan("https://example.com {\n\tbind fd/3\n\trespond \"a\"\n}\n")
        #expect(acme.networkReasons.contains { $0.contains("ACME certificates for example.com") })
        #expect(acme.stateReasons.contains { $0.contains("ACME account") })
        let local = try files("https://example.com {\n\tbind fd/3\n\ttls internal\n\trespond \"a\"\n}\n")
        #expect(lines(local["caddy.container"], "Network") == ["none"])
        #expect(lines(local["caddy.container"], "Volume").contains("caddy_data.volume:/data"))
        #expect(lines(local["caddy_data.volume"], "VolumeName") == ["caddy_data"])
        let stored = try plan("{\n\tstorage file_system /srv/state\n}\nhttps://example.com {\n\tbind fd/3\n\ttls internal\n\trespond \"a\"\n}\n")
        #expect(stored.stateRoot == "/srv/state")
    }

    @Test func serviceUnitRunsTheBinary() throws {
        let f = try files("http://localhost {\n\tbind fd/3\n\trespond \"a\"\n}\n") { $0.service = true }
        let s = try #require(f["caddy.service"])
        #expect(f["caddy.container"] == nil)
        #expect(lines(s, "ExecStart") == ["/usr/local/bin/berth run --config /etc/berth/Caddyfile"])
        #expect(lines(s, "ExecReload") == ["/bin/kill -HUP $MAINPID"])
        #expect(lines(s, "Type") == ["notify"] && lines(s, "PrivateNetwork") == ["yes"])
        #expect(lines(s, "NoNewPrivileges") == ["yes"] && lines(s, "CapabilityBoundingSet") == [""])
    }

    @Test func execWordsAreQuotedForSystemd() {
        #expect(SystemdUnits.quote("/etc/caddy/Caddyfile") == "/etc/caddy/Caddyfile")
        #expect(SystemdUnits.quote("/srv/my site/Caddyfile") == "\"/srv/my site/Caddyfile\"")
        #expect(SystemdUnits.quote("/a$b") == "/a$$b")
    }

    @Test func cliOptions() throws {
        guard case .command(let c, let p) = CLI.resolve(["systemd-units", "-c", "/x/Caddyfile", "--name", "web", "--port", "80=8080,443=8443", "--service", "--out", "/tmp/u"]) else {
            Issue.record("systemd-units did not parse")
            return
        }
        #expect(c.path == ["systemd-units"])
        #expect(p.string("name") == "web" && p.string("port") == "80=8080,443=8443" && p.flag("service") && p.string("out") == "/tmp/u")
    }
}

/// Groups sites into servers by listener (caddy-behavior §2): every site key expands to one
/// listener per bind address; listeners serving the same set of sites merge into one server;
/// servers are named srv0… in sorted order of their first listener key.
enum ServerGrouping {
    struct Claim {
        var address: ListenAddress
        var protocols: [HTTPProtocolName]
        var location: SourceLocation?
        var sites: [Int] = []
        /// Hosts per site on this listener (a site may have several keys).
        var hostsBySite: [Int: [String]] = [:]
        /// True when the listener serves HTTPS sites (it may not mix them with HTTP sites).
        var https = false
    }

    static let defaultProtocols: [HTTPProtocolName] = [.h1, .h2, .h3]

    typealias Bind = (addresses: [ListenAddress], protocols: [HTTPProtocolName], location: SourceLocation)

    /// A site's listeners: its `bind` lines, else `default_bind`, else its own address (port 0
    /// here: the site's port is filled in per address).
    static func binds(of site: SiteBuild, options: GlobalOptions) -> (binds: [Bind], origin: ListenerUse.Origin) {
        if !site.state.binds.isEmpty { return (site.state.binds, .bind) }
        if !options.defaultBinds.isEmpty { return (options.defaultBinds, .defaultBind) }
        return ([([.tcp(host: "", port: 0)], [], site.location)], .siteAddress)
    }

    /// Every (site address, listener) pair in Caddyfile order (`BerthConfig.listenerUses`).
    static func listenerUses(_ sites: [SiteBuild], options: GlobalOptions) -> [ListenerUse] {
        var uses: [ListenerUse] = []
        for site in sites {
            let (binds, origin) = binds(of: site, options: options)
            for addr in site.addresses {
                let https = !addr.isPlainHTTP(httpPort: options.httpPort, httpsPort: options.httpsPort)
                let port = addr.effectivePort(httpPort: options.httpPort, httpsPort: options.httpsPort)
                for b in binds {
                    for a in b.addresses {
                        var la = a
                        if case .tcp(let h, _) = a { la = .tcp(host: h, port: port) }
                        uses.append(ListenerUse(address: la, site: addr.original, port: port, https: https,
                                                origin: origin, location: b.location))
                    }
                }
            }
        }
        return uses
    }

    static func group(_ sites: [SiteBuild], options: GlobalOptions,
                      namedRoutes: [String: NamedRouteBuild] = [:]) throws(ConfigError) -> [ServerConfig] {
        var claims: [String: Claim] = [:]
        var seen: [String: Int] = [:]
        for (si, site) in sites.enumerated() {
            for addr in site.addresses {
                // Caddy: the same site key *text* in two site blocks is ambiguous — on the same
                // listener (httptype.go serversFromPairings compares GetKeysText per listener
                // group), so example 4's `whoami.example.com` on fd/4 and
                // `https://whoami.example.com` on 0.0.0.0 coexist, and so do `example.com` and
                // `https://example.com` (the first site's routes come first).
                let siteKey = addr.original
                let https = !addr.isPlainHTTP(httpPort: options.httpPort, httpsPort: options.httpsPort)
                let port = addr.effectivePort(httpPort: options.httpPort, httpsPort: options.httpsPort)
                for b in binds(of: site, options: options).binds {
                    for a in b.addresses {
                        var la = a
                        if case .tcp(let h, _) = a { la = .tcp(host: h, port: port) }
                        let key = la.description
                        if let other = seen[key + " " + siteKey], other != si {
                            throw ConfigError("ambiguous site definition: \(addr.original)", at: site.location)
                        }
                        seen[key + " " + siteKey] = si
                        let protocols = b.protocols.isEmpty ? (options.serverOptions.protocols ?? defaultProtocols) : b.protocols
                        if var c = claims[key] {
                            if c.https != https {
                                throw ConfigError(
                                    "listener \(key) would serve both HTTP and HTTPS sites; give the http:// sites their own bind (e.g. bind fd/3) or port",
                                    at: site.location)
                            }
                            if c.protocols != protocols {
                                throw ConfigError(
                                    "listener address repeated: \(key) with different protocols (\(c.protocols.map(\.rawValue).joined(separator: " ")) at \(c.location?.description ?? "?") vs \(protocols.map(\.rawValue).joined(separator: " ")))",
                                    at: b.location)
                            }
                            if !c.sites.contains(si) { c.sites.append(si) }
                            c.hostsBySite[si, default: []].append(addr.host)
                            claims[key] = c
                        } else {
                            var c = Claim(address: la, protocols: protocols, location: b.location)
                            c.https = https
                            c.sites = [si]
                            c.hostsBySite[si] = [addr.host]
                            claims[key] = c
                        }
                    }
                }
            }
        }
        // Merge listeners with identical site sets.
        var groups: [(keys: [String], sites: [Int])] = []
        for key in claims.keys.sorted() {
            let s = claims[key]!.sites.sorted()
            if let i = groups.firstIndex(where: { $0.sites == s }) {
                groups[i].keys.append(key)
            } else {
                groups.append(([key], s))
            }
        }
        var servers: [ServerConfig] = []
        for (gi, g) in groups.enumerated() {
            let listeners = g.keys.map { k in
                ListenerConfig(address: claims[k]!.address, protocols: claims[k]!.protocols, location: claims[k]!.location)
            }
            // Hosts of each site on this server.
            var siteHosts: [Int: [String]] = [:]
            for k in g.keys { for (si, hs) in claims[k]!.hostsBySite { siteHosts[si, default: []] += hs } }
            let ordered = g.sites.sorted { a, b in
                specificityKey(siteHosts[a] ?? []) < specificityKey(siteHosts[b] ?? [])
                    || (specificityKey(siteHosts[a] ?? []) == specificityKey(siteHosts[b] ?? []) && a < b)
            }
            var routes: [RouteConfig] = []
            var errorRoutes: [RouteConfig] = []
            var access = AccessLogConfig()
            var anyLog = false
            for si in ordered {
                var hosts: [String] = []
                for h in siteHosts[si] ?? [] where !hosts.contains(h) { hosts.append(h) }
                let catchAll = hosts.contains("")
                let site = sites[si]
                var match: [[any MatcherSpec]] = []
                if !catchAll { match = [[HostMatcherSpec(hosts)]] }
                routes.append(RouteConfig(match: match, handle: site.routes.isEmpty ? [] : [.subroute(site.routes)], terminal: true))
                if !site.state.errorRoutes.isEmpty {
                    // Caddy: handle_errors blocks with a status matcher first, then the others.
                    let sorted = site.state.errorRoutes.filter { !$0.match.isEmpty } + site.state.errorRoutes.filter { $0.match.isEmpty }
                    errorRoutes.append(RouteConfig(match: match, handle: [.subroute(sorted)], terminal: true))
                }
                // Caddy's log associations (httptype.go, issue 3310).
                if site.state.log {
                    anyLog = true
                    for pl in site.state.logs where !pl.noHostname {
                        if catchAll && pl.hostnames.isEmpty {
                            access.logAll = true
                            if !pl.resolvedName.isEmpty { access.defaultLoggerName = pl.resolvedName }
                        } else if !pl.hostnames.isEmpty {
                            for h in pl.hostnames { access.loggerNames[h, default: []].append(pl.resolvedName) }
                        } else {
                            for h in hosts where !h.isEmpty { access.loggerNames[h, default: []].append(pl.resolvedName) }
                        }
                    }
                } else if catchAll {
                    access.skipUnmappedHosts = true
                } else {
                    access.skipHosts += hosts
                }
            }
            var server = ServerConfig(name: "srv\(gi)", listeners: listeners, routes: routes,
                                      logs: anyLog ? access : nil,
                                      errorRoutes: errorRoutes)
            // Named routes the server's sites invoke (Caddy adds them per server).
            server.namedRoutes = try NamedRouteBuild.closure(ordered.flatMap { sites[$0].state.groups.invoked }, namedRoutes)
            if g.keys.contains(where: { claims[$0]!.https }) {
                server.tls = try tlsConfig(ordered.map { ($0, siteHosts[$0] ?? []) }, sites, options)
            }
            servers.append(server)
        }
        if options.autoHTTPS != "off" && options.autoHTTPS != "disable_redirects" {
            addRedirects(&servers, options)
        }
        return servers
    }

    /// Caddy's automatic HTTP→HTTPS redirects (caddy-behavior §2): for every HTTPS server
    /// listening on a TCP address Berth binds, a `308` to `https://{host}{uri}` with
    /// `Connection: close` on the same host at `http_port` — added to the server already
    /// listening there (before its catch-all routes), or to a new server. Never onto inherited
    /// fds: there the redirect address would be the same fd (Examples 3 and 4 write their own).
    static func addRedirects(_ servers: inout [ServerConfig], _ options: GlobalOptions) {
        struct Target { var host: String; var names: [String]; var httpsPort: Int }
        var targets: [Target] = []
        for s in servers where s.tls != nil {
            let names = (s.tls?.certificates ?? []).flatMap(\.names)
            for l in s.listeners {
                guard case .tcp(let h, let port) = l.address, port != options.httpPort else { continue }
                if let i = targets.firstIndex(where: { $0.host == h && $0.httpsPort == port }) {
                    for n in names where !targets[i].names.contains(n) { targets[i].names.append(n) }
                } else {
                    var unique: [String] = []
                    for n in names where !unique.contains(n) { unique.append(n) }
                    targets.append(Target(host: h, names: unique, httpsPort: port))
                }
            }
        }
        for t in targets {
            let location = t.httpsPort == 443 ? "https://{http.request.host}{http.request.uri}"
                : "https://{http.request.host}:\(t.httpsPort){http.request.uri}"
            let redirect = HandlerConfig.spec(StaticResponseSpec(status: 308, headers: ["Location": [location]], close: true))
            var newRoutes: [RouteConfig] = []
            if !t.names.isEmpty {
                newRoutes.append(RouteConfig(match: [[HostMatcherSpec(t.names)]], handle: [redirect], terminal: true))
            }
            let address = ListenAddress.tcp(host: t.host, port: options.httpPort)
            if let si = servers.firstIndex(where: { $0.listeners.contains { $0.address == address } }) {
                // Before the user's catch-all routes; no catch-all redirect of our own.
                let firstCatchAll = servers[si].routes.firstIndex { $0.match.isEmpty } ?? servers[si].routes.count
                servers[si].routes.insert(contentsOf: newRoutes, at: firstCatchAll)
            } else {
                newRoutes.append(RouteConfig(handle: [redirect], terminal: true))
                let name = servers.contains { $0.name == "remaining_auto_https_redirects" } ? "remaining_auto_https_redirects_\(t.host)" : "remaining_auto_https_redirects"
                servers.append(ServerConfig(name: name, listeners: [ListenerConfig(address: address, protocols: [.h1, .h2], location: nil)],
                                            routes: newRoutes, logs: nil))
            }
        }
    }

    /// Decides each HTTPS site's certificate source (caddy-behavior §2, §15): `tls cert key`
    /// files, else the local CA for `tls internal`, `local_certs` or a name that cannot get a
    /// public certificate (localhost, IPs, .local …), else ACME — one certificate per public
    /// name, with the global ACME options overridden by the site's `tls` settings.
    static func tlsConfig(_ siteHosts: [(Int, [String])], _ sites: [SiteBuild], _ options: GlobalOptions) throws(ConfigError) -> ServerTLSConfig {
        var certs: [CertificateSpec] = []
        // A name two sites share (`example.com` and `https://example.com`) gets one certificate.
        var managed: Set<String> = []
        var minV: String? = nil, maxV: String? = nil
        var ciphers: [String]? = nil, curves: [String]? = nil, alpn: [String]? = nil
        var clientAuth: [ClientAuthPolicySpec] = []
        for (si, hostsWithDupes) in siteHosts {
            let site = sites[si]
            var hosts: [String] = []
            for h in hostsWithDupes where !hosts.contains(h) { hosts.append(h) }
            let named = hosts.filter { !$0.isEmpty }
            if let v = site.state.tls?.minimumVersion { minV = v }
            if let v = site.state.tls?.maximumVersion { maxV = v }
            // Suites and groups belong to the listener's TLS context here (Caddy: per
            // connection policy); sites sharing a listener must agree.
            if let c = site.state.tls?.ciphers {
                if let prev = ciphers, prev != c {
                    throw ConfigError("sites sharing a listener must use the same tls ciphers (Berth applies them per listener)", at: site.location)
                }
                ciphers = c
            }
            if let c = site.state.tls?.curves {
                if let prev = curves, prev != c {
                    throw ConfigError("sites sharing a listener must use the same tls curves (Berth applies them per listener)", at: site.location)
                }
                curves = c
            }
            if let a = site.state.tls?.alpn {
                if let prev = alpn, prev != a {
                    throw ConfigError("sites sharing a listener must use the same tls alpn (Berth applies it per listener)", at: site.location)
                }
                alpn = a
            }
            if let ca = site.state.tls?.clientAuth {
                clientAuth.append(ClientAuthPolicySpec(names: hosts.filter { !$0.isEmpty }.map { $0.lowercased() }, spec: ca))
            }
            if case .files(let c, let k) = site.state.tls?.source {
                certs.append(CertificateSpec(names: named, source: .files(certificate: c, key: k)))
                continue
            }
            if named.isEmpty {
                throw ConfigError("HTTPS site '\(site.addresses.first?.original ?? "")' has no host name to issue a certificate for; add `tls <cert_file> <key_file>`",
                                  at: site.location)
            }
            let internalAll = site.state.tls?.source == .internalCA || options.localCerts
            var local: [String] = []
            for name in named where managed.insert(name).inserted {
                guard !internalAll && CertificateNames.qualifiesForPublicCert(name) else {
                    local.append(name)
                    continue
                }
                if options.autoHTTPS == "off" || options.autoHTTPS == "disable_certs" {
                    throw ConfigError("HTTPS site '\(name)' has no certificate (auto_https \(options.autoHTTPS ?? "")); add `tls <cert_file> <key_file>` or `tls internal`",
                                      at: site.location)
                }
                var issuer = options.acme.overridden(by: site.state.tls?.issuer)
                if let e = site.state.tls?.email { issuer.email = e }
                if name.contains("*") {
                    throw ConfigError("site '\(name)': a wildcard certificate needs the ACME DNS-01 challenge, which this Berth build does not support yet; add `tls internal` or `tls <cert_file> <key_file>`",
                                      at: site.location)
                }
                certs.append(CertificateSpec(names: [name], source: .acme(issuer)))
            }
            if !local.isEmpty { certs.append(CertificateSpec(names: local, source: .internalCA)) }
        }
        return ServerTLSConfig(certificates: certs, defaultSNI: options.defaultSNI, minimumVersion: minV, maximumVersion: maxV,
                               ciphers: ciphers, curves: curves, alpn: alpn, clientAuth: clientAuth)
    }

    /// Sort key: specific hosts first (non-wildcard before wildcard, longer first), catch-all last.
    struct SpecKey: Comparable {
        var catchAll: Int
        var wildcard: Int
        var negLength: Int
        static func < (a: SpecKey, b: SpecKey) -> Bool {
            (a.catchAll, a.wildcard, a.negLength) < (b.catchAll, b.wildcard, b.negLength)
        }
    }

    /// Caddy's sort of server blocks (`httptype.go`): a block whose longest host has no
    /// specificity (no host, or only `*`) is a catch-all and goes last; a block with any wildcard
    /// or empty host goes after blocks without; then the longer host first. Specificity is the
    /// host's length without its `*`s (Caddy's `specificity`).
    static func specificityKey(_ hosts: [String]) -> SpecKey {
        let longest = hosts.map { h in h.utf8.count - h.utf8.filter { $0 == UInt8(ascii: "*") }.count }.max() ?? 0
        if longest == 0 { return SpecKey(catchAll: 1, wildcard: 0, negLength: 0) }
        let wildcard = hosts.contains { $0.isEmpty || $0.contains("*") }
        return SpecKey(catchAll: 0, wildcard: wildcard ? 1 : 0, negLength: -longest)
    }
}

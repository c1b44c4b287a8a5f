import Config
import Upstream

/// `berth systemd-units`: the `.socket` unit(s) and the Podman quadlet (`.container`) or
/// `.service` that match a Caddyfile's inherited listeners, with the hardening users of the
/// Caddy-in-Podman examples copy by hand (Notify=, ReadOnly=, NoNewPrivileges=, ExecReload=,
/// BindIPv6Only=both, `Network=none` when nothing needs a network).
///
/// The derivation (`plan`) is pure: Caddyfile listeners in, sockets and reasons out; `render`
/// turns a plan into unit files. Numbered fds (`bind fd/N`, `fdgram/N`) go into one socket unit
/// whose Listen lines are in fd order from 3, because systemd passes a unit's sockets in the
/// order of its configuration and orders nothing across units (systemd.socket(5)); named fds
/// (`fdname/NAME`, `fdgramname/NAME`) get one unit per name with `FileDescriptorName=NAME`.
package enum SystemdUnits {
    /// What the command line asked for.
    package struct Options: Sendable {
        /// Base name of the units: `caddy` → caddy.socket + caddy.container (caddy.service).
        package var name = "caddy"
        /// The container image (quadlet `Image=`).
        package var image = "localhost/berth:latest"
        /// A plain `.service` running the Berth binary instead of a quadlet.
        package var service = false
        /// Socket port per Caddyfile port (`--port 80=8080`).
        package var ports: [Int: Int] = [:]
        /// `Network=` value given on the command line (nil: derived).
        package var network: String? = nil
        /// `Environment=BERTH_EXIT_IDLE=…` when set.
        package var exitIdle: String? = nil
        /// The config file on the host, absolute.
        package var configPath: String
        /// The Berth binary (for `--service`), absolute.
        package var binary: String

        package init(configPath: String, binary: String) {
            self.configPath = configPath
            self.binary = binary
        }
    }

    /// One socket of a socket unit.
    package struct Socket: Sendable, Equatable {
        /// `ListenDatagram=` rather than `ListenStream=`.
        package var datagram: Bool
        /// The sites' port, as the Caddyfile gives it (before `--port`).
        package var port: Int
        /// The bind address that names it: `fd/3`, `fdgram/5`, `fdname/web/1`.
        package var bind: String
        /// The site addresses served on it, with the lines that bind them.
        package var uses: [ListenerUse]
    }

    /// One `.socket` unit.
    package struct SocketUnit: Sendable, Equatable {
        /// `caddy.socket`, `caddy-web.socket`.
        package var unitName: String
        /// `FileDescriptorName=` (named fds only).
        package var fdName: String?
        /// In Listen-line order (for numbered fds: fd 3, 4, 5…).
        package var sockets: [Socket]
    }

    /// Everything the units are made from.
    package struct Plan: Sendable {
        package var socketUnits: [SocketUnit] = []
        /// Why the server needs a network (empty: `Network=none` / `PrivateNetwork=yes`).
        package var networkReasons: [String] = []
        /// Why the server needs a writable data directory (empty: no data volume).
        package var stateReasons: [String] = []
        /// The data directory's root inside the container: `storage file_system` or /data
        /// (the image's XDG_DATA_HOME).
        package var stateRoot: String = "/data"
        /// The admin endpoint's unix socket path, when the config has one.
        package var adminSocket: String? = nil
        /// Addresses below port 1024 Berth binds itself (it then needs CAP_NET_BIND_SERVICE).
        package var privilegedOwnAddresses: [String] = []
    }

    // MARK: - Derivation

    /// Derives the socket units and the server's needs from a loaded config.
    package static func plan(_ config: BerthConfig, name: String) throws(ConfigError) -> Plan {
        guard isUnitNamePart(name) else {
            throw ConfigError("--name '\(name)': a unit name may only contain letters, digits, '-', '_' and '.'")
        }
        if config.listenerUses.isEmpty && config.servers.isEmpty {
            throw ConfigError("nothing to socket-activate: \(config.sourceFile ?? "the config") has no site")
        }
        if config.listenerUses.isEmpty {
            throw ConfigError("systemd-units needs a Caddyfile: \(config.sourceFile ?? "the config") records no site addresses for its listeners (Berth's JSON keeps no site ports for fd/N)")
        }
        var plan = Plan()
        var numbered: [Int: Socket] = [:]
        var named: [(name: String, uses: [(index: Int?, use: ListenerUse)])] = []
        var firstNumbered: ListenerUse? = nil
        var firstNamed: ListenerUse? = nil
        var ownAddresses: [String] = []
        for use in config.listenerUses {
            switch use.address {
            case .fd(let n), .fdgram(let n):
                if firstNumbered == nil { firstNumbered = use }
                let datagram = use.address.isDatagram
                guard n >= 3 else {
                    throw ConfigError("\(use.address): file descriptors 0–2 are standard input, output and error; systemd passes sockets from fd 3 on", at: use.location)
                }
                if var s = numbered[n] {
                    if s.datagram != datagram {
                        throw ConfigError("\(use.address) and \(s.bind) (\(s.uses[0].location)) both claim file descriptor \(n); a socket is either a stream (ListenStream=) or a datagram (ListenDatagram=) socket, so give one of them its own number", at: use.location)
                    }
                    if s.port != use.port {
                        let other = s.uses[0]
                        throw ConfigError("\(use.address) serves \(use.site) on port \(use.port) but also \(other.site) on port \(other.port) (\(other.location)); one socket has one port, so bind one of them to its own fd", at: use.location)
                    }
                    s.uses.append(use)
                    numbered[n] = s
                } else {
                    numbered[n] = Socket(datagram: datagram, port: use.port, bind: use.address.description, uses: [use])
                }
            case .fdname(let fdName, let index), .fdgramname(let fdName, let index):
                if firstNamed == nil { firstNamed = use }
                guard isUnitNamePart(fdName) else {
                    throw ConfigError("\(use.address): Berth names the socket unit after the fd name (\(name)-\(fdName).socket), so the name may only contain letters, digits, '-', '_' and '.'", at: use.location)
                }
                if let i = named.firstIndex(where: { $0.name == fdName }) {
                    named[i].uses.append((index, use))
                } else {
                    named.append((fdName, [(index, use)]))
                }
            case .tcp, .unix:
                if case .tcp(_, let port) = use.address, !ownAddresses.contains(use.address.description) {
                    ownAddresses.append(use.address.description)
                    plan.networkReasons.append("\(use.site) listens on \(use.address) itself (\(use.origin.rawValue) at \(use.location))")
                    if port < 1024 { plan.privilegedOwnAddresses.append(use.address.description) }
                }
            }
        }
        if let a = firstNumbered, let b = firstNamed {
            throw ConfigError("\(b.address) and \(a.address) (\(a.location)): numbered fds need all their sockets in one socket unit, and systemd does not order fds across units; use names (fdname/…, fdgramname/…) or numbers for every inherited socket", at: b.location)
        }
        if firstNumbered == nil && firstNamed == nil {
            let first = config.listenerUses[0]
            throw ConfigError("nothing to socket-activate: no site is bound to an inherited socket (bind fd/3, fdgram/N, fdname/NAME or fdgramname/NAME, or default_bind); \(first.site) listens on \(first.address) itself", at: first.location)
        }
        if !numbered.isEmpty {
            var sockets: [Socket] = []
            var expected = 3
            for n in numbered.keys.sorted() {
                let s = numbered[n]!
                if n != expected {
                    throw ConfigError("\(s.bind) leaves fd/\(expected) unused: systemd passes a socket unit's sockets as fd 3, 4, 5… in the order of its ListenStream=/ListenDatagram= lines, so the numbers must run from 3 without gaps", at: s.uses[0].location)
                }
                sockets.append(s)
                expected += 1
            }
            plan.socketUnits.append(SocketUnit(unitName: "\(name).socket", fdName: nil, sockets: sockets))
        }
        for (fdName, uses) in named {
            var sockets: [Socket] = []
            for datagram in [false, true] {
                sockets += try namedSockets(uses.filter { $0.use.address.isDatagram == datagram })
            }
            plan.socketUnits.append(SocketUnit(unitName: "\(name)-\(fdName).socket", fdName: fdName, sockets: sockets))
        }
        needs(config, &plan)
        return plan
    }

    /// The sockets of one name and kind: one socket for `fdname/NAME` (all its sites on one
    /// port), or one per index for `fdname/NAME/0`, `/1`… (indices from 0 without gaps).
    private static func namedSockets(_ uses: [(index: Int?, use: ListenerUse)]) throws(ConfigError) -> [Socket] {
        guard let first = uses.first else { return [] }
        let indexed = uses.filter { $0.index != nil }
        if let all = uses.first(where: { $0.index == nil }), let one = indexed.first {
            throw ConfigError("\(all.use.address) takes every socket of that name but \(one.use.address) (\(one.use.location)) takes one of them by index; use one form for a name", at: all.use.location)
        }
        var byIndex: [Int: Socket] = [:]
        for (index, use) in uses {
            let k = index ?? 0
            if var s = byIndex[k] {
                if s.port != use.port {
                    let other = s.uses[0]
                    throw ConfigError("\(use.address) serves \(use.site) on port \(use.port) but also \(other.site) on port \(other.port) (\(other.location)); the sockets of one name must share a port, so give the other port its own name (or index)", at: use.location)
                }
                s.uses.append(use)
                byIndex[k] = s
            } else {
                let bind: String
                switch use.address {
                case .fdname(let n, _): bind = "fdname/\(n)" + (index.map { "/\($0)" } ?? "")
                case .fdgramname(let n, _): bind = "fdgramname/\(n)" + (index.map { "/\($0)" } ?? "")
                default: bind = use.address.description
                }
                byIndex[k] = Socket(datagram: first.use.address.isDatagram, port: use.port, bind: bind, uses: [use])
            }
        }
        var out: [Socket] = []
        for (expected, k) in byIndex.keys.sorted().enumerated() {
            if k != expected {
                throw ConfigError("\(byIndex[k]!.bind) leaves index \(expected) of that name unused: the indices count the name's sockets from 0 in the unit's order", at: byIndex[k]!.uses[0].location)
            }
            out.append(byIndex[k]!)
        }
        return out
    }

    /// Network and state needs, from the servers, certificates and admin endpoint.
    private static func needs(_ config: BerthConfig, _ plan: inout Plan) {
        if let root = config.storageRoot { plan.stateRoot = root }
        var upstreams: [String] = []
        func walk(_ routes: [RouteConfig]) {
            for r in routes {
                for h in r.handle {
                    switch h {
                    case .subroute(let inner): walk(inner)
                    case .spec(let s):
                        guard let rp = s as? ReverseProxySpec else { continue }
                        for u in rp.upstreams {
                            if case .tcp = u.endpoint, !upstreams.contains(u.dial) { upstreams.append(u.dial) }
                        }
                    }
                }
            }
        }
        var acme: [String] = []
        var local: [String] = []
        var h3 = false
        for s in config.servers {
            walk(s.routes)
            walk(s.errorRoutes)
            for c in s.tls?.certificates ?? [] {
                switch c.source {
                case .acme: for n in c.names where !acme.contains(n) { acme.append(n) }
                case .internalCA: for n in c.names where !local.contains(n) { local.append(n) }
                case .files: break
                }
            }
            // HTTP/3 on an inherited datagram socket, or beside a TCP address Berth binds.
            if s.tls != nil, s.listeners.contains(where: { l in
                if l.address.isDatagram { return true }
                if case .tcp = l.address { return l.protocols.contains(.h3) }
                return false
            }) {
                h3 = true
            }
        }
        for u in upstreams { plan.networkReasons.append("reverse_proxy dials \(u)") }
        if !acme.isEmpty {
            plan.networkReasons.append("ACME certificates for \(acme.joined(separator: ", ")) come from a CA on the network")
            plan.stateReasons.append("ACME account and certificates for \(acme.joined(separator: ", "))")
        }
        if !local.isEmpty {
            plan.stateReasons.append("the local CA behind \(local.joined(separator: ", ")) (tls internal)")
        }
        if h3 {
            plan.stateReasons.append("HTTP/3's static secret (quic.secret: Retry and stateless-reset tokens that survive restarts)")
        }
        switch config.admin {
        case .unix(let path, _):
            plan.adminSocket = path
        case .tcp(let host, let port):
            let h = host.lowercased()
            if !(h == "localhost" || h.hasPrefix("127.") || h == "::1") {
                plan.networkReasons.append("the admin endpoint listens on \(host.isEmpty ? "*" : host):\(port)")
            }
        case .off, .fd:
            break
        }
    }

    /// Letters, digits, `-`, `_`, `.` (safe in a unit name and as `FileDescriptorName=`).
    static func isUnitNamePart(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 200
            && s.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                    || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
            }
    }
}

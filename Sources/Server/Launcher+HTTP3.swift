#if canImport(Glibc)
import Glibc
#endif
import Config
import EventLoop
import IOCore
import SystemD

/// HTTP/3 listeners at start-up and reload (caddy-behavior §3): `fdgram/N` serves h3 on the
/// inherited UDP socket; h3 on a TCP address binds the same address over UDP, as Caddy does;
/// servers with an h3 listener advertise it with `Alt-Svc` on h1/h2.
extension Launcher {
    /// Serves inherited datagram sockets `fds` as HTTP/3 for server `si`.
    static func addDatagramListeners(
        _ fds: [InheritedFD], config: BerthConfig, serverIndex si: Int, address: String, location: String,
        claimed: inout [Int32: String], into out: inout [ServedListener], notes: inout [String]
    ) throws(StartError) {
        let server = config.servers[si]
        guard server.tls != nil else {
            notes.append("\(location): bind \(address): HTTP/3 needs TLS, and this site is plain HTTP; the socket is not served")
            return
        }
        for f in fds {
            if let other = claimed[f.fd], other != server.name {
                throw StartError("\(location): listener address repeated: \(address) (already claimed by server '\(other)')")
            }
            claimed[f.fd] = server.name
            do {
                try UDPSocket.configure(f.fd)
            } catch {
                throw StartError("\(location): bind \(address): preparing the UDP socket for QUIC: \(error)")
            }
            var s = ServedListener(fd: f.fd, serverIndex: si, protocols: [.h3], displayName: address, ownedByBerth: false)
            s.isDatagram = true
            out.append(s)
        }
    }

    /// h3 on a TCP address: the same host and port over UDP (reused across reloads). A port
    /// that cannot be bound leaves the site on h1/h2 with a warning.
    static func bindUDPForH3(
        host: String, port: Int, key: String, serverIndex si: Int, existing: [ServedListener],
        reused: inout Set<Int32>, into out: inout [ServedListener], notes: inout [String]
    ) {
        let name = "udp/" + key
        let fd: Int32
        if let reuse = existing.first(where: { $0.ownedByBerth && $0.isDatagram && $0.displayName == name }) {
            fd = reuse.fd
            reused.insert(fd)
        } else {
            var addr: SocketAddress?
            var dualStack = false
            switch host {
            case "":
                addr = SocketAddress(ip: "::", port: port)
                dualStack = true
            case "localhost":
                addr = SocketAddress(ip: "127.0.0.1", port: port)
            default:
                addr = SocketAddress(ip: host, port: port)
            }
            guard let a = addr else { return }
            do {
                fd = try UDPSocket.bind(a, dualStack: dualStack).release()
            } catch {
                if dualStack, error.errno == EAFNOSUPPORT, let v4 = SocketAddress(ip: "0.0.0.0", port: port),
                    let f = try? UDPSocket.bind(v4).release()
                {
                    fd = f
                } else {
                    notes.append("HTTP/3 on \(key) disabled: binding the UDP port failed: \(error)")
                    return
                }
            }
        }
        var s = ServedListener(fd: fd, serverIndex: si, protocols: [.h3], displayName: name, ownedByBerth: true)
        s.isDatagram = true
        out.append(s)
    }

    /// `Alt-Svc: h3=":PORT"; ma=2592000` on the stream listeners of every server that also
    /// serves h3 (RFC 7838 §3, RFC 9114 §3.1.1), PORT being the UDP socket's own port
    /// (getsockname: right for inherited sockets too) unless `alt_svc_port` overrides it.
    /// Also warns when a server's only UDP sockets are IPv4 while it listens on IPv6 TCP:
    /// browsers reaching the site over IPv6 then fail HTTP/3 (users.md, podman-caddy#17).
    static func assignAltSvc(_ out: inout [ServedListener], options: ServerOptions, notes: inout [String]) {
        var ports: [Int: Int] = [:]
        var udpV6: [Int: Bool] = [:]
        var udpNames: [Int: [String]] = [:]
        for l in out where l.isDatagram {
            guard let a = Socket.localAddress(l.fd) else { continue }
            if ports[l.serverIndex] == nil { ports[l.serverIndex] = a.port }
            let v6 = a.family == AF_INET6
            udpV6[l.serverIndex] = (udpV6[l.serverIndex] ?? false) || v6
            udpNames[l.serverIndex, default: []].append("\(l.displayName) (\(a))")
        }
        var warned = Set<Int>()
        for i in out.indices where !out[i].isDatagram {
            let si = out[i].serverIndex
            guard let p = ports[si] else { continue }
            let port = options.altSvcPort ?? p
            out[i].altSvc = Array("h3=\":\(port)\"; ma=2592000".utf8)
            if udpV6[si] == false, !warned.contains(si), let a = Socket.localAddress(out[i].fd), a.family == AF_INET6 {
                warned.insert(si)
                notes.append(
                    "HTTP/3 is served only over IPv4 (\((udpNames[si] ?? []).joined(separator: ", "))) but the site also listens on IPv6 TCP (\(out[i].displayName), \(a)): browsers that connect over IPv6 will fail HTTP/3; inherit a dual-stack UDP socket instead (ListenDatagram=[::]:\(p) with BindIPv6Only=both)")
            }
        }
    }
}

#if canImport(Glibc)
import JSON
import Glibc
#endif
import Admin
import Config
import EventLoop
import Handlers
import HTTPCore
import IOCore
import SystemD
import Upstream

/// The admin endpoint: a listening socket on the control loop, served by Berth's own HTTP/1
/// stack with `AdminHandler` as the only route.
final class AdminEndpoint: AcceptDelegate {
    /// Caddy's admin server timeouts: read-header 5 s, idle 60 s, body 10 s; 64 KiB heads.
    static let limits: ServerLimits = {
        var l = ServerLimits()
        l.readHeaderTimeoutMilliseconds = 5_000
        l.idleTimeoutMilliseconds = 60_000
        l.readBodyTimeoutMilliseconds = 10_000
        l.maxHeaderBytes = 64 * 1024
        return l
    }()

    let config: AdminConfig
    let fd: Int32
    let owned: Bool
    /// The socket file to remove at exit (unix endpoints).
    let unixPath: String?
    private var listener: Listener?
    private let served: ServedListener
    private let runtime: ServerRuntime
    private unowned let supervisor: Supervisor

    private init(config: AdminConfig, fd: Int32, owned: Bool, unixPath: String?, handler: AdminHandler, supervisor: Supervisor) {
        self.config = config
        self.fd = fd
        self.owned = owned
        self.unixPath = unixPath
        self.supervisor = supervisor
        let route = Route(handlers: [handler])
        let rs = RuntimeServer(name: "admin", handler: ServerHandler(routes: [route]), accessLog: nil)
        runtime = ServerRuntime(servers: [rs], config: supervisor.current.config)
        served = ServedListener(fd: fd, serverIndex: 0, protocols: [.h1], displayName: "admin", ownedByBerth: owned)
    }

    /// Opens the endpoint `config` asks for (nil for `admin off`) and starts accepting.
    static func make(_ config: AdminConfig, supervisor: Supervisor, existing: AdminEndpoint?) throws(StartError) -> AdminEndpoint? {
        let fd: Int32
        var owned = true
        var unixPath: String? = nil
        var hosts: [String] = []
        var origins: [String] = []
        switch config {
        case .off:
            return nil
        case .unix(let path, let mode):
            do {
                fd = try Socket.listenUnix(path: path, mode: mode_t(mode), replacingLive: existing?.unixPath == path).release()
            } catch {
                throw StartError("admin endpoint: listening on unix/\(path): \(error)")
            }
            unixPath = path
        case .tcp(let host, let port):
            let ip = host == "localhost" || host.isEmpty ? "127.0.0.1" : host
            guard let addr = SocketAddress(ip: ip, port: port) else {
                throw StartError("admin endpoint: \(host):\(port) is not an IP address or localhost")
            }
            do {
                fd = try Socket.listenTCP(addr).release()
            } catch {
                throw StartError("admin endpoint: listening on \(addr): \(error)")
            }
            for h in ["localhost", "127.0.0.1", "[::1]", host] {
                hosts.append("\(h):\(port)")
                origins.append("http://\(h):\(port)")
            }
        case .fd(let n):
            let fds: [InheritedFD]
            do {
                fds = try supervisor.inherited.resolve("fd/\(n)", location: supervisor.current.path ?? "", directive: "admin") ?? []
            } catch {
                throw StartError(error.description)
            }
            guard let f = fds.first else { throw StartError("admin fd/\(n): not inherited") }
            fd = f.fd
            owned = false
        }
        let handler = AdminHandler(control: supervisor, allowedHosts: hosts, allowedOrigins: origins)
        let ep = AdminEndpoint(config: config, fd: fd, owned: owned, unixPath: unixPath, handler: handler, supervisor: supervisor)
        let l = Listener(fd: fd, loop: supervisor.control, delegate: ep, tag: 0)
        do {
            try l.start()
        } catch {
            if owned { Glibc.close(fd) }
            throw StartError("admin endpoint: \(error)")
        }
        ep.listener = l
        Log.info("admin", "admin endpoint started", [("address", .string(config.caddyAddress))])
        return ep
    }

    func accepted(fd: Int32, peer: SocketAddress?, listener: Listener, loop: EventLoop) {
        HTTP1ConnectionFactory().makeConnection(fd: fd, peer: peer, listener: served, server: runtime.servers[0],
                                                runtime: runtime, context: supervisor.controlContext)
    }

    /// Stops accepting and closes the socket (and its file, unless a new endpoint reuses the path).
    func close(keepingPath: String? = nil) {
        listener?.stop()
        listener = nil
        if owned { Glibc.close(fd) }
        if let p = unixPath, p != keepingPath, !p.hasPrefix("@") { unlink(p) }
    }
}

extension AdminConfig {
    /// Caddy's spelling of the address.
    package var caddyAddress: String {
        switch self {
        case .off: return "off"
        case .tcp(let h, let p): return "\(h):\(p)"
        case .unix(let p, _): return "unix/\(p)"
        case .fd(let n): return "fd/\(n)"
        }
    }
}

extension Supervisor: AdminControl {
    func load(body: [UInt8], contentType: String, sourceFile: String?, force: Bool) -> AdminLoadOutcome {
        let ct = contentType.lowercased()
        let format: ConfigFormat
        let filename: String
        if ct.contains("caddyfile") {
            format = .caddyfile
            filename = sourceFile ?? current.path ?? "Caddyfile"
        } else if ct.contains("json") {
            // Berth's own JSON (`berth adapt`); Caddy's gets a 400 saying what to send instead.
            format = .json
            filename = sourceFile ?? Supervisor.loadBodyName
        } else {
            return .failed(status: 400, message: "unsupported Content-Type '\(contentType)': send a Caddyfile as text/caddyfile, or Berth's JSON (the output of `berth adapt`) as application/json")
        }
        if stopping { return .failed(status: 503, message: "server is stopping") }
        try? notifier?.reloading()
        do {
            let outcome = try apply(bytes: body, filename: filename, format: format, force: force)
            Log.info("admin.api", outcome == .loaded ? "config reloaded" : "config is unchanged", [("source", .string("admin /load"))])
            lastReloadError = nil
            try? notifier?.ready(status: statusLine())
            return outcome
        } catch let e as ConfigError {
            lastReloadError = e.description.replacingNewlines()
            try? notifier?.ready(status: "reload failed: \(e.description.replacingNewlines())")
            Log.error("admin.api", "reload failed; keeping the old config", [("error", .string(e.description))])
            return .failed(status: 400, message: "loading config: \(e.description)")
        } catch {
            lastReloadError = "\(error)".replacingNewlines()
            try? notifier?.ready(status: "reload failed: \("\(error)".replacingNewlines())")
            Log.error("admin.api", "reload failed; keeping the old config", [("error", .string("\(error)"))])
            return .failed(status: 400, message: "loading config: \(error)")
        }
    }

    func currentConfig() -> JSONValue { current.config.json }

    func stop() {
        Log.info("admin.api", "stopping", [("source", .string("admin /stop"))])
        // Let the response go out first.
        control.schedule(afterMilliseconds: 1) { [self] in self.beginStop() }
    }

    func health() -> (healthy: Bool, json: JSONValue) {
        let ok = !stopping && !server.listeners.isEmpty
        return (ok, .object([
            ("status", .string(ok ? "ok" : "stopping")),
            ("listeners", .array(server.listeners.map { .string($0.displayName) })),
            ("loops", .int(server.group.loops.count)),
            ("reloads", .int(reloads)),
        ]))
    }

    func upstreams() -> JSONValue {
        .array(UpstreamRegistry.snapshot().map { u in
            .object([("address", .string(u.address)), ("num_requests", .int(u.numRequests)), ("fails", .int(u.fails))])
        })
    }
}

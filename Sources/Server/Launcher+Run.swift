#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Config
import EventLoop
import IOCore
import SystemD

/// An error that stops start-up.
package struct StartError: Error, CustomStringConvertible {
    package var description: String
    package init(_ d: String) { description = d }
}

extension Launcher {
    /// Opens or adopts every listener of `config`: stream listeners (h1/h2), and UDP sockets
    /// for h3 (inherited `fdgram`, or bound next to a TCP address; see Launcher+HTTP3.swift).
    package static func resolveListeners(_ config: BerthConfig, inherited: InheritedSockets,
                                         existing: [ServedListener] = []) throws(StartError) -> (listeners: [ServedListener], notes: [String]) {
        var out: [ServedListener] = []
        var notes: [String] = []
        var claimed: [Int32: String] = [:]
        var bound: [String: Int32] = [:]
        var reused: Set<Int32> = []
        do throws(StartError) {
            for (si, server) in config.servers.enumerated() {
                for l in server.listeners {
                    let loc = l.location?.description ?? "default config"
                    let streamProtocols = l.protocols.filter { $0 != .h3 }
                    switch l.address {
                    case .fd, .fdname, .fdgram, .fdgramname:
                        let fds: [InheritedFD]
                        do {
                            fds = try inherited.resolve(l.address.description, location: loc) ?? []
                        } catch {
                            throw StartError(error.description)
                        }
                        if l.address.isDatagram {
                            if !l.protocols.contains(.h3) {
                                throw StartError("\(loc): bind \(l.address): a datagram socket can only serve HTTP/3 (protocols h3); network 'fdgram' cannot handle HTTP/1 or HTTP/2 connections")
                            }
                            try addDatagramListeners(fds, config: config, serverIndex: si, address: l.address.description,
                                                     location: loc, claimed: &claimed, into: &out, notes: &notes)
                            continue
                        }
                        if l.protocols == [.h3] {
                            throw StartError("\(loc): bind \(l.address): network 'fd' cannot handle HTTP/3 connections; use fdgram/N for h3")
                        }
                        for f in fds {
                            if let other = claimed[f.fd], other != server.name {
                                throw StartError("\(loc): listener address repeated: \(l.address) (already claimed by server '\(other)')")
                            }
                            claimed[f.fd] = server.name
                            out.append(ServedListener(fd: f.fd, serverIndex: si, protocols: streamProtocols,
                                                      displayName: l.address.description, ownedByBerth: false))
                        }
                    case .tcp(let host, let port):
                        let key = l.address.description
                        if bound[key] != nil { continue }
                        let fd: Int32
                        if let reuse = existing.first(where: { $0.ownedByBerth && $0.displayName == key }) {
                            fd = reuse.fd
                            reused.insert(fd)
                        } else {
                            fd = try bindTCP(host: host, port: port, location: loc)
                        }
                        bound[key] = fd
                        out.append(ServedListener(fd: fd, serverIndex: si, protocols: streamProtocols,
                                                  displayName: key, ownedByBerth: true))
                        if l.protocols.contains(.h3) && server.tls != nil {
                            // h3 on a TCP address means "the same address over UDP" in Caddy (it
                            // needs TLS, which plain-HTTP sites do not have).
                            bindUDPForH3(host: host, port: port, key: key, serverIndex: si, existing: existing,
                                         reused: &reused, into: &out, notes: &notes)
                        }
                    case .unix(let path):
                        if let reuse = existing.first(where: { $0.ownedByBerth && $0.displayName == "unix/\(path)" }) {
                            reused.insert(reuse.fd)
                            out.append(ServedListener(fd: reuse.fd, serverIndex: si, protocols: streamProtocols,
                                                      displayName: "unix/\(path)", ownedByBerth: true))
                            continue
                        }
                        do {
                            let fd = try Socket.listenUnix(path: path).release()
                            out.append(ServedListener(fd: fd, serverIndex: si, protocols: streamProtocols,
                                                      displayName: "unix/\(path)", ownedByBerth: true))
                        } catch {
                            throw StartError("\(loc): listening on unix/\(path): \(error)")
                        }
                    }
                }
            }
        } catch {
            for l in out where l.ownedByBerth && !reused.contains(l.fd) { close(l.fd) }
            throw error
        }
        assignAltSvc(&out, options: config.serverOptions, notes: &notes)
        return (out, notes)
    }

    /// Binds a TCP listener; an empty host means every interface (one dual-stack `[::]` socket).
    static func bindTCP(host: String, port: Int, location: String) throws(StartError) -> Int32 {
        let addr: SocketAddress?
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
        guard let a = addr else {
            throw StartError("\(location): bind \(host): not an IP address (Berth binds IP literals, 'localhost', or all interfaces)")
        }
        do {
            let fd = try Socket.listenTCP(a, dualStack: dualStack)
            return fd.release()
        } catch {
            if host.isEmpty, error.errno == EAFNOSUPPORT, let v4 = SocketAddress(ip: "0.0.0.0", port: port) {
                // No IPv6 on this host: fall back to IPv4 only.
                do { return try Socket.listenTCP(v4).release() } catch { throw StartError("\(location): listening on \(v4): \(error)") }
            }
            throw StartError("\(location): listening on \(a): \(error)")
        }
    }

    /// `berth run`: load, adopt, bind, serve, and handle signals until stopped. Returns the exit code.
    package static func run(_ o: RunOptions) -> Int32 {
        // Signals are handled by the main thread through a signalfd; block them before any
        // loop thread exists so every thread inherits the mask.
        var mask = sigset_t()
        sigemptyset(&mask)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT] { sigaddset(&mask, s) }
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        signal(SIGPIPE, SIG_IGN)

        // Adopt first: before any thread exists (it unsets LISTEN_*) and before Berth opens fds.
        let inherited = SocketActivation.adopt()
        let notifier = SDNotifier()
        for w in inherited.warnings { Log.warn("systemd", w) }
        if !inherited.descriptors.isEmpty { Log.info("systemd", inherited.summary) }
        // Like Caddy, every config load is bracketed by RELOADING=1 … READY=1, the first included.
        try? notifier?.reloading()

        func fail(_ msg: String) -> Int32 {
            Log.error("", "exiting: \(msg)")
            FileIO.writeAll(2, "Error: \(msg)\n")
            try? notifier?.status("start failed: \(msg.replacingNewlines())")
            return 1
        }

        if let e = o.envFile {
            do { try loadEnvFile(e) } catch { return fail(error.description) }
        }
        let env = environment()
        var exitIdleMilliseconds: Int? = nil
        if let text = o.exitIdle ?? env["BERTH_EXIT_IDLE"], !text.isEmpty {
            guard let ms = DurationText.parseMilliseconds(text), ms > 0 else {
                return fail("invalid exit-idle duration '\(text)' (e.g. 30s, 10m)")
            }
            exitIdleMilliseconds = ms
        }
        var loaded: LoadedConfig
        do {
            if let l = try loadConfig(o, environment: env) {
                loaded = l
                Log.info("", "using config from file", [("file", .string(l.path ?? ""))])
            } else {
                let streams = inherited.descriptors.filter(\.isStreamListener).map { ListenAddress.fd(Int($0.fd)) }
                let listeners = streams.isEmpty ? [ListenAddress.tcp(host: "127.0.0.1", port: 8080)] : streams
                loaded = LoadedConfig(config: DefaultSite.config(listeners: listeners), path: nil)
                Log.info("", "no config file given: serving the built-in page", [("listen", .strings(listeners.map(\.description)))])
            }
        } catch {
            return fail(error.description)
        }
        for w in loaded.config.warnings { Log.warn("caddyfile", w) }

        let runtime: ServerRuntime
        do { runtime = try ServerRuntime.build(loaded.config, environment: env) } catch { return fail(error.description) }
        runtime.logging.activate()
        let resolved: (listeners: [ServedListener], notes: [String])
        do { resolved = try resolveListeners(loaded.config, inherited: inherited) } catch { return fail(error.description) }
        for n in resolved.notes { Log.warn("http", n) }
        if resolved.listeners.isEmpty { return fail("no listener to serve: the config has no stream listener (h1)") }

        let loopCount = o.loops ?? env["BERTH_LOOPS"].flatMap { Int($0) } ?? EventLoopGroup.defaultLoopCount

        let server: HTTPServer
        do {
            server = try HTTPServer(runtime: runtime, listeners: resolved.listeners, loopCount: loopCount,
                                    limits: ServerLimits(loaded.config.serverOptions), factory: HTTP1ConnectionFactory())
            try server.start()
        } catch {
            return fail("starting server: \(error)")
        }
        if let pf = o.pidFile { try? FileIO.writeAtomically(pf, Array("\(getpid())\n".utf8)) }
        let supervisor: Supervisor
        do {
            supervisor = try Supervisor(server: server, notifier: notifier, options: o, current: loaded,
                                        inherited: inherited, signals: mask, environment: env)
        } catch {
            server.stopNow()
            return fail(error.description)
        }
        ACMERuntime.activate(runtime, control: supervisor.control)  // ACME: obtain in the background
        if let ms = exitIdleMilliseconds { supervisor.watchIdle(milliseconds: ms) }
        let names = resolved.listeners.map(\.displayName)
        Log.info("http.log", "server running", [("listen", .strings(names)), ("loops", .int(loopCount))])
        Log.info("", "serving initial configuration")
        try? notifier?.ready(status: supervisor.statusLine())
        supervisor.watchStatus()
        return supervisor.run()
    }

}

extension String {
    func replacingNewlines() -> String {
        String(self.map { $0 == "\n" ? " " : $0 })
    }
}

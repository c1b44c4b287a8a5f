#if canImport(Glibc)
import Glibc
#endif
import Admin
import CLinux
import Config
import EventLoop
import Handlers
import HTTPCore
import IOCore
import SystemD

/// The control thread (the process's main thread): signals, the admin endpoint, reloads and
/// graceful shutdown all happen here, on its own event loop, so they never race each other.
final class Supervisor: EventHandler, @unchecked Sendable {
    let control: EventLoop
    let controlContext: LoopContext
    let server: HTTPServer
    let notifier: SDNotifier?
    let options: RunOptions
    let inherited: InheritedSockets
    var current: LoadedConfig
    var environment: [String: String]
    private let signalFD: Int32
    var admin: AdminEndpoint?
    private(set) var exitCode: Int32 = 0
    private(set) var stopping = false
    private var stopped = false
    var reloads = 0
    /// The last reload's error, kept in `STATUS=` until a reload succeeds (control thread).
    var lastReloadError: String?
    /// Open and accepted connections at the last status poll (control thread).
    private var statusCounts: (Int, Int)?
    /// `--exit-idle` state (control thread).
    private var idleLimit = 0
    private var idleSince: UInt64? = nil
    private var idleLastAccepted = -1
    private var idleWarned = false

    init(server: HTTPServer, notifier: SDNotifier?, options: RunOptions, current: LoadedConfig,
         inherited: InheritedSockets, signals: sigset_t, environment: [String: String]) throws(StartError) {
        self.server = server
        self.notifier = notifier
        self.options = options
        self.current = current
        self.inherited = inherited
        self.environment = environment
        do {
            control = try EventLoop(index: -1)
        } catch {
            throw StartError("creating the control loop: \(error)")
        }
        let placeholderRuntime = ServerRuntime(servers: [], config: current.config)
        controlContext = LoopContext(loop: control, runtime: placeholderRuntime, limits: AdminEndpoint.limits)
        var mask = signals
        signalFD = signalfd(-1, &mask, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        if signalFD < 0 { throw StartError("signalfd: \(IOError.describe(errno))") }
        do {
            try control.register(fd: signalFD, interest: .read, handler: self)
            admin = try AdminEndpoint.make(current.config.admin, supervisor: self, existing: nil)
        } catch let e as StartError {
            throw e
        } catch {
            throw StartError("\(error)")
        }
    }

    /// Runs the control loop until the process should exit; returns the exit code.
    func run() -> Int32 {
        control.run()
        return exitCode
    }

    /// `STATUS=` text: what is served, the connection counts of the last poll (live status),
    /// reloads, and the last reload's error until a reload succeeds.
    func statusLine() -> String {
        let names = server.listeners.map(\.displayName)
        var s = "serving \(names.joined(separator: " ")) with \(server.group.loops.count) loop\(server.group.loops.count == 1 ? "" : "s")"
        if let (open, accepted) = statusCounts {
            s += "; \(open) open connection\(open == 1 ? "" : "s"), \(accepted) accepted"
        }
        if reloads > 0 { s += "; \(reloads) reload\(reloads == 1 ? "" : "s")" }
        if let e = lastReloadError { s += "; last reload failed: " + e }
        return s
    }

    /// Live `STATUS=` (systemctl status shows it): every `statusIntervalMilliseconds` the loops
    /// report their connection counts and the line is re-sent when they changed. Only under a
    /// service manager (NOTIFY_SOCKET set).
    func watchStatus() {
        guard notifier != nil else { return }
        control.schedule(afterMilliseconds: Supervisor.statusIntervalMilliseconds) { [self] in pollStatus() }
    }

    static let statusIntervalMilliseconds = 5_000

    private func pollStatus() {
        if stopping { return }
        let control = self.control
        server.activity { [self] open, accepted in
            control.execute { [self] in
                if stopping { return }
                if statusCounts == nil || statusCounts! != (open, accepted) {
                    statusCounts = (open, accepted)
                    try? notifier?.status(statusLine())
                }
                watchStatus()
            }
        }
    }

    // MARK: Signals

    func handleEvents(_ events: UInt32) {
        var info = signalfd_siginfo()
        while read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            let sig = Int32(info.ssi_signo)
            switch sig {
            case SIGTERM, SIGINT:
                if stopping {
                    if sig == SIGINT {
                        // A second Ctrl-C forces the exit, as Caddy does.
                        Log.warn("", "force quit", [("signal", .string("SIGINT"))])
                        exitCode = 2
                        finishStop(clean: false)
                    }
                    continue
                }
                Log.info("", "shutting down", [("signal", .string(sig == SIGTERM ? "SIGTERM" : "SIGINT"))])
                beginStop()
            case SIGQUIT:
                Log.warn("", "force quit", [("signal", .string("SIGQUIT"))])
                exitCode = 2
                finishStop(clean: false)
            case SIGHUP, SIGUSR1:
                reloadFromFile(signal: sig == SIGHUP ? "SIGHUP" : "SIGUSR1")
            default:
                Log.info("", "signal ignored", [("signal", .int(Int(sig)))])
            }
        }
    }

    // MARK: Exit when idle

    /// `--exit-idle`: polls the loops and stops gracefully once no connection has been open or
    /// accepted for `milliseconds`. Only while every listener is inherited — the service
    /// manager keeps those sockets and starts the next instance when a client connects (its
    /// connection waits in the listen backlog meanwhile); a listener Berth bound itself would
    /// go away with the process, so then Berth stays up (and says so once).
    func watchIdle(milliseconds: Int) {
        idleLimit = milliseconds
        Log.info("", "exit when idle enabled", [("idle_ms", .int(milliseconds))])
        scheduleIdlePoll()
    }

    private func scheduleIdlePoll() {
        let interval = max(50, min(1000, idleLimit / 4))
        control.schedule(afterMilliseconds: interval) { [self] in pollIdle() }
    }

    /// Control thread: one poll of the loops' activity.
    private func pollIdle() {
        if stopping { return }
        guard server.allListenersInherited else {
            if !idleWarned {
                idleWarned = true
                Log.warn("", "exit when idle is off: some listeners are not inherited from the service manager, so exiting would stop serving them",
                         [("listen", .strings(server.listeners.filter(\.ownedByBerth).map(\.displayName)))])
            }
            idleSince = nil
            scheduleIdlePoll()
            return
        }
        let control = self.control
        server.activity { [self] open, accepted in
            control.execute { [self] in idleReport(open: open, accepted: accepted) }
        }
    }

    private func idleReport(open: Int, accepted: Int) {
        if stopping { return }
        let now = Clock.monotonicNanos()
        if open > 0 || accepted != idleLastAccepted {
            idleSince = nil
            idleLastAccepted = accepted
        } else if let since = idleSince {
            if now &- since >= UInt64(idleLimit) &* 1_000_000 {
                Log.info("", "exiting: idle", [("idle_ms", .int(idleLimit))])
                beginStop()
                return
            }
        } else {
            idleSince = now
        }
        scheduleIdlePoll()
    }

    // MARK: Stop

    /// Graceful stop: STOPPING=1, `shutdown_delay`, stop accepting, let in-flight requests
    /// finish within `grace_period`, then close what is left and exit 0.
    func beginStop() {
        if stopping { return }
        stopping = true
        try? notifier?.stopping()
        let delay = current.config.shutdownDelayMilliseconds
        let grace = current.config.gracePeriodMilliseconds
        let start = { [self] in
            let control = self.control
            let me = self
            server.beginShutdown {
                control.execute { me.finishStop(clean: true) }
            }
            control.schedule(afterMilliseconds: grace) { [self] in
                if !self.stopped { Log.warn("", "grace period over; closing remaining connections", [("grace_ms", .int(grace))]) }
                self.finishStop(clean: false)
            }
        }
        if delay > 0 {
            control.schedule(afterMilliseconds: delay, start)
        } else {
            start()
        }
    }

    func finishStop(clean: Bool) {
        if stopped { return }
        stopped = true
        ACMERuntime.stop()  // ACME: abandon any issuance in progress
        server.stopNow()
        admin?.close()
        admin = nil
        if let pf = options.pidFile { unlink(pf) }
        Log.info("", "shutdown complete", [("exit_code", .int(Int(exitCode))), ("clean", .bool(clean))])
        control.stop()
    }

    // MARK: Reload

    /// What errors call a JSON config POSTed to /load without a source file name.
    static let loadBodyName = "POST /load"

    /// SIGHUP / SIGUSR1: re-read the file given to `run`.
    func reloadFromFile(signal: String) {
        guard let path = current.path else {
            Log.warn("", "reload requested but Berth runs the built-in page (no config file)")
            return
        }
        try? notifier?.reloading()
        do {
            let bytes: [UInt8]
            do { bytes = try FileIO.readAll(path) } catch { throw ConfigError("reading config from file: \(error)") }
            let outcome = try apply(bytes: bytes, filename: path, format: current.format, force: true)
            Log.info("", "config reloaded", [("signal", .string(signal)), ("changed", .bool(outcome == .loaded))])
            lastReloadError = nil
            try? notifier?.ready(status: statusLine())
        } catch {
            Log.error("", "reload failed; keeping the old config", [("error", .string("\(error)"))])
            lastReloadError = "\(error)".replacingNewlines()
            try? notifier?.ready(status: "reload failed: " + lastReloadError!)
        }
    }

    /// Reads (a Caddyfile, or Berth's JSON) and applies a config. Throws on any failure,
    /// leaving the old config serving.
    func apply(bytes: [UInt8], filename: String, format: ConfigFormat, force: Bool) throws -> AdminLoadOutcome {
        environment = Launcher.environment()
        var cfg = try format.adapt(bytes, filename: filename, environment: environment)
        // A JSON body POSTed without Caddy-Config-Source-File comes from no file (nothing for
        // file_server to hide).
        if filename == Supervisor.loadBodyName { cfg.sourceFile = nil }
        for w in cfg.warnings { Log.warn("caddyfile", w) }
        if !force && cfg.json == current.config.json {
            Log.info("", "config is unchanged")
            return .unchanged
        }
        let runtime = try ServerRuntime.build(cfg, environment: environment)
        let before = server.listeners
        let resolved = try Launcher.resolveListeners(cfg, inherited: inherited, existing: before)
        for n in resolved.notes { Log.warn("http", n) }
        let previousFDs = Set(before.map(\.fd))
        let newlyOpened = resolved.listeners.filter { $0.ownedByBerth && !previousFDs.contains($0.fd) }
        if resolved.listeners.isEmpty {
            for l in newlyOpened { Glibc.close(l.fd) }
            throw ConfigError("the new config has no stream listener to serve")
        }
        var newAdmin: AdminEndpoint? = admin
        if cfg.admin != current.config.admin {
            do {
                newAdmin = try AdminEndpoint.make(cfg.admin, supervisor: self, existing: admin)
            } catch {
                for l in newlyOpened { Glibc.close(l.fd) }
                throw error
            }
        }
        server.apply(runtime: runtime, listeners: resolved.listeners)
        runtime.logging.activate()
        ACMERuntime.activate(runtime, control: control)  // ACME: manage the new config's names
        if newAdmin !== admin {
            admin?.close(keepingPath: newAdmin?.unixPath)
            admin = newAdmin
        }
        // SIGHUP/SIGUSR1 keep re-reading the file given to `run` (the built-in page has none:
        // then the loaded one).
        if current.path == nil {
            current = LoadedConfig(config: cfg, path: filename == Supervisor.loadBodyName ? nil : filename, format: format)
        } else {
            current = LoadedConfig(config: cfg, path: current.path, format: current.format)
        }
        reloads += 1
        return .loaded
    }
}

#if canImport(Glibc)
import Glibc
#endif
import ACME
import Config
import HTTPCore
import IOCore
import Upstream

/// One configured log (Caddy's `logging.logs.NAME`): where, how and what it writes.
package final class LogSink: Sendable {
    package let name: String
    package let output: LogOutput
    package let format: LogFormat
    package let minimumLevel: LogLevel
    let config: CustomLogConfig

    init(name: String, config: CustomLogConfig, output: LogOutput) {
        self.name = name
        self.config = config
        self.output = output
        format = config.format ?? .json
        minimumLevel = config.minimumLevel
    }

    package func accepts(logger: String, level: LogLevel) -> Bool {
        level >= minimumLevel && config.allows(logger: logger)
    }
}

/// The logs of one config. Without any `log` option there is one default log: JSON on stderr.
/// Writers (files) are shared by key across reloads, so a reload that keeps a file keeps its
/// descriptor and its roll state.
package final class LoggingRuntime: Sendable {
    package let sinks: [LogSink]

    init(sinks: [LogSink]) { self.sinks = sinks }

    /// Berth's default: every logger, info and up, JSON on stderr.
    package static let stderrDefault: LoggingRuntime = {
        // Opening stderr cannot fail.
        let out = try! LogOutput(LogWriterConfig())
        return LoggingRuntime(sinks: [LogSink(name: "default", config: CustomLogConfig(), output: out)])
    }()

    /// Opens every writer `logs` needs, reusing `previous`'s writers with the same settings.
    package static func build(_ logs: [NamedLog], previous: LoggingRuntime?) throws(ConfigError) -> LoggingRuntime {
        var entries = logs
        if !entries.contains(where: { $0.name == "default" }) {
            entries.insert(NamedLog(name: "default", log: CustomLogConfig()), at: 0)
        }
        var outputs: [String: LogOutput] = [:]
        for s in previous?.sinks ?? [] where outputs[s.output.config.key] == nil {
            outputs[s.output.config.key] = s.output
        }
        var opened: [String: LogOutput] = [:]
        var sinks: [LogSink] = []
        for e in entries {
            let w = e.log.writer ?? LogWriterConfig()
            let out: LogOutput
            if let o = opened[w.key] {
                out = o
            } else if let o = outputs[w.key], o.config == w {
                out = o
            } else {
                do {
                    out = try LogOutput(w)
                } catch {
                    // Caddy: "setting up default log: …" / "setting up custom log 'log0': …".
                    let what = e.name == "default" ? "default log" : "custom log '\(e.name)'"
                    throw ConfigError("setting up \(what): \(error.message)", at: error.location)
                }
            }
            opened[w.key] = out
            sinks.append(LogSink(name: e.name, config: e.log, output: out))
        }
        return LoggingRuntime(sinks: sinks)
    }

    /// The logs an entry of `logger` at `level` goes to.
    package func sinks(for logger: String, level: LogLevel) -> [LogSink] {
        sinks.filter { $0.accepts(logger: logger, level: level) }
    }

    // MARK: The process-wide current logging

    nonisolated(unsafe) private static var installed: LoggingRuntime?
    private static let lock = Mutex()

    /// What process logs (`Log.write`) use; nil until a config is loaded (stderr JSON).
    package static var current: LoggingRuntime? {
        lock.lock()
        defer { lock.unlock() }
        return installed
    }

    /// Makes these logs the process's; says so on the old default log when the default
    /// writer changes (Caddy's "redirected default logger").
    package func activate() {
        let old = LoggingRuntime.current ?? LoggingRuntime.stderrDefault
        let from = old.sinks.first { $0.name == "default" }?.output.config
        let to = sinks.first { $0.name == "default" }?.output.config
        if let from, let to, from.key != to.key {
            Log.info("", "redirected default logger", [("from", .string(from.describe)), ("to", .string(to.describe))])
        }
        LoggingRuntime.install(self)
    }

    package static func install(_ r: LoggingRuntime) {
        ProxyDebug.enabled.store(!r.sinks(for: ProxyDebug.logger, level: .debug).isEmpty, ordering: .relaxed)
        if ProxyDebug.sink == nil {
            ProxyDebug.sink = { msg, fields in Log.write("debug", ProxyDebug.logger, msg, fieldsJSON: fields) }
        }
        lock.lock()
        installed = r
        lock.unlock()
    }
}

extension LogWriterConfig {
    /// How Caddy names a writer in "redirected default logger".
    var describe: String { output == .file ? filename : output.rawValue }
}

/// Caddy's console encoder pieces: `2006/01/02 15:04:05.000` in UTC, colored capital levels,
/// and `{"k": v, …}` fields (zap's JSON with a space after `:` and `,`).
package enum ConsoleFormat {
    /// Appends the wall-clock UTC time with milliseconds.
    package static func appendTime(_ out: ByteBuffer, seconds: Int, nanos: Int) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rem = seconds - days * 86_400
        let (y, m, d) = HTTPDate.civil(fromDays: days)
        appendDigits(out, y, 4)
        out.append(byte: UInt8(ascii: "/"))
        appendDigits(out, m, 2)
        out.append(byte: UInt8(ascii: "/"))
        appendDigits(out, d, 2)
        out.append(byte: UInt8(ascii: " "))
        appendDigits(out, rem / 3600, 2)
        out.append(byte: UInt8(ascii: ":"))
        appendDigits(out, rem / 60 % 60, 2)
        out.append(byte: UInt8(ascii: ":"))
        appendDigits(out, rem % 60, 2)
        out.append(byte: UInt8(ascii: "."))
        appendDigits(out, nanos / 1_000_000, 3)
    }

    /// Caddy's default `level_format color`: zap's CapitalColorLevelEncoder.
    package static func appendLevel(_ out: ByteBuffer, _ level: LogLevel) {
        switch level {
        case .debug: out.append("\u{1B}[35mDEBUG\u{1B}[0m")
        case .info: out.append("\u{1B}[34mINFO\u{1B}[0m")
        case .warn: out.append("\u{1B}[33mWARN\u{1B}[0m")
        case .error: out.append("\u{1B}[31mERROR\u{1B}[0m")
        case .panic: out.append("\u{1B}[31mPANIC\u{1B}[0m")
        case .fatal: out.append("\u{1B}[31mFATAL\u{1B}[0m")
        }
    }

    /// Copies a JSON object, adding a space after each `:` and `,` outside strings.
    package static func appendSpaced(_ out: ByteBuffer, _ json: UnsafeRawBufferPointer) {
        var inString = false
        var escaped = false
        for c in json {
            out.append(byte: c)
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == UInt8(ascii: ":") || c == UInt8(ascii: ",") {
                out.append(byte: UInt8(ascii: " "))
            }
        }
    }

    private static func appendDigits(_ out: ByteBuffer, _ v: Int, _ n: Int) {
        var div = 1
        for _ in 1..<n { div *= 10 }
        var x = v
        while div > 0 {
            out.append(byte: UInt8(48 + (x / div) % 10))
            x %= div
            div /= 10
        }
    }
}

/// Berth's data directory (local CA, ACME certificates and account, QUIC secret):
/// `storage file_system <root>` when configured, else `$XDG_DATA_HOME/berth` (Caddy's
/// `AppDataDir` rule with Berth's name).
package enum DataDirectory {
    nonisolated(unsafe) private static var configured: String?
    private static let lock = Mutex()

    package static var root: String {
        lock.lock()
        defer { lock.unlock() }
        return configured ?? ACMEStorage.defaultRoot()
    }

    /// The configured root (nil = default), as set by the last runtime build.
    package static var configuredRoot: String? {
        lock.lock()
        defer { lock.unlock() }
        return configured
    }

    package static func configure(_ root: String?) {
        lock.lock()
        configured = root
        lock.unlock()
    }
}

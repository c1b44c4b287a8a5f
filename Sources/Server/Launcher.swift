#if canImport(Glibc)
import Glibc
#endif
import CLinux
import Caddyfile
import Config
import EventLoop
import IOCore
import SystemD

/// What `berth run/validate/adapt` were asked to do.
package struct RunOptions: Sendable {
    package var configPath: String?
    package var adapter: String?
    package var envFile: String?
    package var loops: Int?
    package var pidFile: String?
    /// `--exit-idle` (or `BERTH_EXIT_IDLE`): stop after this long without connections, when
    /// every listener is inherited (socket activation starts the next instance on demand).
    package var exitIdle: String?
    package init(configPath: String?, adapter: String?, envFile: String? = nil, loops: Int? = nil, pidFile: String? = nil,
                 exitIdle: String? = nil) {
        self.exitIdle = exitIdle
        self.configPath = configPath
        self.adapter = adapter
        self.envFile = envFile
        self.loops = loops
        self.pidFile = pidFile
    }
}

/// A config loaded from a file or the embedded default.
package struct LoadedConfig {
    package var config: BerthConfig
    /// The file it came from (nil for the embedded default).
    package var path: String?
    /// How that file is read (SIGHUP/SIGUSR1 re-read it the same way).
    package var format: ConfigFormat = .caddyfile
}

/// The two config formats Berth reads: the Caddyfile, and Berth's own JSON as `berth adapt`
/// prints it (Caddy's JSON is refused with a clear error).
package enum ConfigFormat: Sendable, Equatable {
    case caddyfile
    case json

    /// `--adapter caddyfile|json`; without one, a `.json` file is Berth's JSON and anything
    /// else a Caddyfile.
    package static func of(path: String, adapter: String?) throws(ConfigError) -> ConfigFormat {
        switch adapter {
        case "caddyfile": return .caddyfile
        case "json": return .json
        case nil: return path.lowercased().hasSuffix(".json") ? .json : .caddyfile
        case let a?:
            throw ConfigError("unsupported adapter '\(a)': Berth reads Caddyfiles (--adapter caddyfile) and its own JSON as printed by `berth adapt` (--adapter json)")
        }
    }

    /// The `Content-Type` `berth reload` sends (and `POST /load` accepts).
    package var contentType: String {
        switch self {
        case .caddyfile: return "text/caddyfile"
        case .json: return "application/json"
        }
    }

    /// Reads a config in this format. `filename` names it in errors.
    package func adapt(_ bytes: [UInt8], filename: String, environment: [String: String]) throws(ConfigError) -> BerthConfig {
        switch self {
        case .caddyfile:
            var cfg = try CaddyfileAdapter.adapt(bytes, filename: filename, environment: environment)
            cfg.sourceFile = filename
            return cfg
        case .json:
            return try JSONConfigDecoder.decode(bytes, filename: filename)
        }
    }
}

/// Start-up, validation and the main thread's signal loop.
package enum Launcher {
    /// The process environment as a dictionary.
    package static func environment() -> [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") {
                env[String(s[s.startIndex..<eq])] = String(s[s.index(after: eq)...])
            }
            p += 1
        }
        return env
    }

    /// Loads `--envfile` KEY=VALUE lines into the environment (existing variables win, as Caddy).
    static func loadEnvFile(_ path: String) throws(ConfigError) {
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path) } catch { throw ConfigError("reading envfile: \(error)") }
        for (i, raw) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.trimmingCharacters()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let eq = line.firstIndex(of: "=") else { throw ConfigError("can't parse line \(i + 1) of envfile: missing '='") }
            let k = String(line[line.startIndex..<eq]).trimmingCharacters()
            var v = String(line[line.index(after: eq)...]).trimmingCharacters()
            if v.count >= 2, (v.hasPrefix("\"") && v.hasSuffix("\"")) || (v.hasPrefix("'") && v.hasSuffix("'")) {
                v = String(v.dropFirst().dropLast())
            }
            if getenv(k) == nil { setenv(k, v, 0) }
        }
    }

    /// Reads and adapts the config named by the options (or ./Caddyfile); nil path means "use the
    /// embedded default".
    package static func loadConfig(_ o: RunOptions, environment: [String: String]) throws(ConfigError) -> LoadedConfig? {
        var path = o.configPath
        if path == nil, FileIO.isRegularFile("Caddyfile") { path = "Caddyfile" }
        guard let p = path else {
            _ = try ConfigFormat.of(path: "", adapter: o.adapter)
            return nil
        }
        let format = try ConfigFormat.of(path: p, adapter: o.adapter)
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(p) } catch { throw ConfigError("reading config from file: \(error)") }
        var cfg = try format.adapt(bytes, filename: p, environment: environment)
        if format == .caddyfile, let line = CaddyfileFormatter.firstUnformattedLine(bytes) {
            cfg.warnings.append("\(p):\(line): Caddyfile input is not formatted; run 'berth fmt --overwrite' to fix inconsistencies")
        }
        return LoadedConfig(config: cfg, path: p, format: format)
    }

    /// `berth validate`.
    package static func validate(_ o: RunOptions) -> Int32 {
        do {
            if let e = o.envFile { try loadEnvFile(e) }
            let env = environment()
            guard let loaded = try loadConfig(o, environment: env) else {
                FileIO.writeAll(2, "Error: no config file to validate (use --config FILE)\n")
                return 1
            }
            _ = try ServerRuntime.build(loaded.config, environment: env)
            FileIO.writeAll(1, "Valid configuration\n")
            return 0
        } catch {
            FileIO.writeAll(2, "Error: \(error)\n")
            return 1
        }
    }

    /// `berth adapt`.
    package static func adapt(_ o: RunOptions, pretty: Bool, validate: Bool) -> Int32 {
        do {
            if let e = o.envFile { try loadEnvFile(e) }
            let env = environment()
            guard let loaded = try loadConfig(o, environment: env) else {
                FileIO.writeAll(2, "Error: no config file to adapt (use --config FILE)\n")
                return 1
            }
            if validate { _ = try ServerRuntime.build(loaded.config, environment: env) }
            for w in loaded.config.warnings { Log.warn("caddyfile", w) }
            FileIO.writeAll(1, loaded.config.json.serialized(pretty: pretty) + "\n")
            return 0
        } catch {
            FileIO.writeAll(2, "Error: \(error)\n")
            return 1
        }
    }
}

extension StringProtocol {
    /// Trims ASCII whitespace.
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}

import JSON
import Caddyfile

/// Log levels as zap names them (Caddy's `level`).
package enum LogLevel: Int, Sendable, Comparable {
    case debug = 0, info, warn, error, panic, fatal

    /// Caddy's `parseLevel`: case-insensitive; empty means info. `dpanic` is not accepted.
    package init?(caddyName s: String) {
        switch s.lowercased() {
        case "debug": self = .debug
        case "", "info": self = .info
        case "warn": self = .warn
        case "error": self = .error
        case "panic": self = .panic
        case "fatal": self = .fatal
        default: return nil
        }
    }

    package static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Encoders Berth implements: zap's JSON and Caddy's console (human-readable) format.
package enum LogFormat: String, Sendable, Equatable {
    case json, console
}

/// A log's `output` (Caddy's writer modules `stderr`, `stdout`, `discard`, `file`).
package struct LogWriterConfig: Sendable, Equatable {
    package enum Output: String, Sendable { case stderr, stdout, discard, file }
    package var output: Output = .stderr
    package var filename = ""
    /// File mode when creating (`mode`); nil = Caddy's 0600.
    package var mode: UInt32? = nil
    /// False after `roll_disabled`.
    package var roll = true
    /// `roll_size`, rounded up to whole MiB like Caddy; nil = 100.
    package var rollSizeMB: Int? = nil
    /// False after `roll_uncompressed`; nil = gzip rolled files.
    package var rollGzip: Bool? = nil
    package var rollLocalTime = false
    /// nil = 10 rolled files.
    package var rollKeep: Int? = nil
    /// nil = 90 days.
    package var rollKeepDays: Int? = nil
    package init() {}

    package var effectiveRollBytes: Int { (rollSizeMB ?? 100) * 1_048_576 }
    package var effectiveRollKeep: Int { rollKeep ?? 10 }
    package var effectiveRollKeepDays: Int { rollKeepDays ?? 90 }
    package var effectiveGzip: Bool { rollGzip ?? true }
    /// Caddy's WriterKey: logs sharing a file share one writer.
    package var key: String {
        switch output {
        case .file: return "file:" + filename
        default: return output.rawValue
        }
    }
}

/// One entry of Caddy's `logging.logs`.
package struct CustomLogConfig: Sendable, Equatable {
    package var writer: LogWriterConfig? = nil
    package var format: LogFormat? = nil
    package var level: String? = nil
    package var include: [String] = []
    package var exclude: [String] = []
    package init() {}

    var isEmpty: Bool { self == CustomLogConfig() }

    /// The level entries must reach (nil level = info).
    package var minimumLevel: LogLevel { LogLevel(caddyName: level ?? "") ?? .info }

    /// Caddy's `CustomLog.loggerAllowed` for a logger name (not a module ID).
    package func allows(logger: String) -> Bool {
        if include.isEmpty && exclude.isEmpty { return true }
        var name = logger
        if name != "" && name != "*" && name != "." { name += "." }
        var longestAccept = 0, longestReject = 0
        if !include.isEmpty {
            for ns in include where name.hasPrefix(ns + ".") && ns.count > longestAccept { longestAccept = ns.count }
            if longestAccept == 0 { return false }
        }
        for ns in exclude {
            if (ns == "*" && name != ".") || (ns == "." && name == ".") { return false }
            if name.hasPrefix(ns + ".") && ns.count > longestReject { longestReject = ns.count }
        }
        if longestReject > longestAccept { return false }
        return longestAccept > longestReject || (include.isEmpty && longestReject == 0)
    }
}

/// A named log (`default` is the default logger every logger writes to unless excluded).
package struct NamedLog: Sendable, Equatable {
    package var name: String
    package var log: CustomLogConfig
    package init(name: String, log: CustomLogConfig) {
        self.name = name
        self.log = log
    }
}

/// A `log` as written in the global options or a site, before names are assigned.
package struct ParsedLog: Sendable {
    /// The name given (`log NAME`); nil when none.
    package var name: String?
    package var log: CustomLogConfig
    package var hostnames: [String] = []
    package var noHostname = false
    package var location: SourceLocation
    /// The name entries are logged under (`log0`… for unnamed custom logs; "" = plain).
    package var resolvedName = ""
}

extension DirectiveParsers {
    /// Caddy's `parseLogHelper`, for the global option (`global == true`) and the site
    /// directive: `log [name] { output …; format json|console; level L; include/exclude … }`.
    /// Sub-options Berth does not implement are refused with a message saying so.
    /// `globalNames` holds the names of the global logs read so far (nil for the directive).
    package static func parseLog(_ d: inout Dispenser, globalNames: inout Set<String>?) throws(CaddyfileError) -> ParsedLog {
        let loc = SourceLocation(file: d.file, line: d.line)
        let global = globalNames != nil
        var name: String? = nil
        if d.nextArg() {
            name = d.val
            if d.nextArg() { throw d.argErr() }
        }
        if global {
            let n = name ?? "default"
            if globalNames!.contains(n) { throw d.err("duplicate global log option for: \(n)") }
            globalNames!.insert(n)
        }
        var cl = CustomLogConfig()
        var seen: Set<String> = []
        var hostnames: [String] = []
        var noHostname = false
        func unique(_ d: inout Dispenser) throws(CaddyfileError) {
            if !seen.insert(d.val).inserted {
                throw d.err("'\(d.val)' subdirective specified more than once in the same log block")
            }
        }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            switch d.val {
            case "hostnames":
                if global { throw d.err("hostnames is not allowed in the log global options") }
                let args = d.remainingArgs()
                if args.isEmpty { throw d.argErr() }
                hostnames += args
            case "no_hostname":
                try unique(&d)
                if d.nextArg() { throw d.argErr() }
                noHostname = true
            case "output":
                try unique(&d)
                guard d.nextArg() else { throw d.argErr() }
                cl.writer = try parseLogWriter(&d)
            case "format":
                try unique(&d)
                guard d.nextArg() else { throw d.argErr() }
                let f = d.val
                switch f {
                case "json", "console":
                    if d.nextArg() { throw d.argErr() }
                    let inner = d.nesting
                    if d.nextBlock(inner) {
                        throw d.err("log format '\(f)' option '\(d.val)' is not supported by this Berth build yet")
                    }
                    cl.format = LogFormat(rawValue: f)
                case "filter", "append", "transform", "logfmt", "single_field":
                    throw d.err("log format '\(f)' is not supported by this Berth build yet (json and console only)")
                default:
                    throw d.err("getting module named 'caddy.logging.encoders.\(f)': module not registered: caddy.logging.encoders.\(f)")
                }
            case "level":
                try unique(&d)
                guard d.nextArg() else { throw d.argErr() }
                let v = d.val
                if d.nextArg() { throw d.argErr() }
                guard LogLevel(caddyName: v) != nil else { throw d.err("unrecognized log level: \(v.lowercased())") }
                cl.level = v
            case "include", "exclude":
                let which = d.val
                if !global { throw d.err("\(which) is not allowed in the log directive") }
                while d.nextArg() {
                    if which == "include" { cl.include.append(d.val) } else { cl.exclude.append(d.val) }
                }
            case "sampling", "core":
                throw d.err("log option '\(d.val)' is not supported by this Berth build yet")
            default:
                throw d.err("unrecognized subdirective: \(d.val)")
            }
        }
        return ParsedLog(name: name, log: cl, hostnames: hostnames, noHostname: noHostname, location: loc)
    }

    /// `output stderr|stdout|discard|file <path> { … }` (the dispenser is on the module name).
    static func parseLogWriter(_ d: inout Dispenser) throws(CaddyfileError) -> LogWriterConfig {
        var w = LogWriterConfig()
        switch d.val {
        case "stderr", "stdout", "discard":
            // Caddy reads nothing more here (a `}` on the same line still closes the block).
            w.output = LogWriterConfig.Output(rawValue: d.val)!
            return w
        case "file":
            break
        case "net":
            throw d.err("log output 'net' is not supported by this Berth build yet")
        default:
            throw d.err("getting module named 'caddy.logging.writers.\(d.val)': module not registered: caddy.logging.writers.\(d.val)")
        }
        w.output = .file
        guard d.nextArg() else { throw d.argErr() }
        w.filename = d.val
        if d.nextArg() { throw d.argErr() }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            let key = d.val
            func one(_ d: inout Dispenser) throws(CaddyfileError) -> String {
                guard d.nextArg() else { throw d.argErr() }
                let v = d.val
                if d.nextArg() { throw d.argErr() }
                return v
            }
            switch key {
            case "mode":
                let v = try one(&d)
                let padded = String(repeating: "0", count: max(0, 4 - v.count)) + v
                guard let m = UInt32(padded, radix: 8), m <= 0o7777 else {
                    throw d.err("parsing mode: strconv.ParseUint: parsing \"\(padded)\": invalid syntax")
                }
                w.mode = m
            case "roll_disabled":
                if d.nextArg() { throw d.argErr() }
                w.roll = false
            case "roll_size":
                let v = try one(&d)
                guard let bytes = ByteSize.parse(v) else { throw d.err("parsing size: strconv.ParseFloat: parsing \"\(v)\": invalid syntax") }
                w.rollSizeMB = (bytes + 1_048_575) / 1_048_576
            case "roll_uncompressed":
                if d.nextArg() { throw d.argErr() }
                w.rollGzip = false
            case "roll_local_time":
                if d.nextArg() { throw d.argErr() }
                w.rollLocalTime = true
            case "roll_keep":
                let v = try one(&d)
                guard let n = Int(v) else { throw d.err("parsing roll_keep number: strconv.Atoi: parsing \"\(v)\": invalid syntax") }
                w.rollKeep = n
            case "roll_keep_for":
                let v = try one(&d)
                guard let ms = DurationText.parseMilliseconds(v) else { throw d.err("parsing roll_keep_for duration: invalid duration '\(v)'") }
                if ms < 0 { throw d.err("negative roll_keep_for duration: \(v)") }
                w.rollKeepDays = (ms + 86_399_999) / 86_400_000
            case "dir_mode", "roll_interval", "roll_minutes", "roll_at", "roll_compression", "backup_time_format":
                throw d.err("log file option '\(key)' is not supported by this Berth build yet")
            default:
                throw d.err("unrecognized subdirective '\(key)'")
            }
        }
        return w
    }
}

extension NamedLog {
    /// Caddy's `logging.logs` assembly (httptype.go): the default log first, then the others;
    /// every log that includes something is excluded from the default log; `debug` lowers
    /// unset levels to DEBUG.
    package static func assemble(global: [ParsedLog], sites: [(name: String, log: CustomLogConfig?)], debug: Bool) -> [NamedLog] {
        var custom: [(name: String, log: CustomLogConfig?)] = []
        var hasDefault = false
        func add(_ name: String, _ log: CustomLogConfig?) {
            if name.isEmpty { return }
            if name == "default" { hasDefault = true }
            var l = log
            if debug, l != nil, l!.level == nil { l!.level = "DEBUG" }
            custom.append((name, l))
        }
        for g in global { add(g.name ?? "default", g.log.isEmpty ? nil : g.log) }
        if !hasDefault && debug {
            var l = CustomLogConfig()
            l.level = "DEBUG"
            custom.append(("default", l))
        }
        for s in sites { add(s.name, s.log) }
        var logs: [String: CustomLogConfig] = [:]
        for c in custom where c.name == "default" {
            if let l = c.log { logs["default"] = l; break }
        }
        for c in custom {
            guard let l = c.log, c.name != "default" else { continue }
            logs[c.name] = l
            if !l.include.isEmpty {
                var def = logs["default"] ?? CustomLogConfig()
                def.exclude = Array(Set(def.exclude + l.include)).sorted()
                logs["default"] = def
            }
        }
        return logs.keys.sorted().map { NamedLog(name: $0, log: logs[$0]!) }
    }
}

extension LogWriterConfig {
    var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if output == .file {
            o.append(("filename", .string(filename)))
            if let m = mode {
                let s = String(m, radix: 8)
                o.append(("mode", .string(String(repeating: "0", count: max(0, 4 - s.count)) + s)))
            }
        }
        o.append(("output", .string(output.rawValue)))
        if output == .file {
            if !roll { o.append(("roll", .bool(false))) }
            if let g = rollGzip { o.append(("roll_gzip", .bool(g))) }
            if let k = rollKeep { o.append(("roll_keep", .int(k))) }
            if let k = rollKeepDays { o.append(("roll_keep_days", .int(k))) }
            if rollLocalTime { o.append(("roll_local_time", .bool(true))) }
            if let s = rollSizeMB { o.append(("roll_size_mb", .int(s))) }
        }
        return .object(o)
    }
}

extension CustomLogConfig {
    var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if let w = writer { o.append(("writer", w.json)) }
        if let f = format { o.append(("encoder", .object([("format", .string(f.rawValue))]))) }
        if let l = level { o.append(("level", .string(l))) }
        if !include.isEmpty { o.append(("include", .array(include.map { .string($0) }))) }
        if !exclude.isEmpty { o.append(("exclude", .array(exclude.map { .string($0) }))) }
        return .object(o)
    }
}

#if canImport(Glibc)
import JSON
import Glibc
#endif
import Config
import IOCore

/// Process log lines shaped like Caddy's zap JSON on stderr (cold paths only).
package enum Log {
    /// A field value.
    package enum Value {
        case string(String)
        case int(Int)
        case bool(Bool)
        case strings([String])
    }

    /// Writes one line to every log that takes `logger` at `level` (JSON
    /// `{"level":…,"ts":…,"logger":…,"msg":…, fields…}` or Caddy's console format); before a
    /// config is loaded, JSON on stderr.
    package static func write(_ level: String, _ logger: String, _ msg: String, _ fields: [(String, Value)] = []) {
        let lv = LogLevel(caddyName: level) ?? .info
        let sinks = LoggingRuntime.current?.sinks(for: logger, level: lv)
        if let sinks, sinks.isEmpty { return }
        var fieldsJSON = ""
        for (k, v) in fields {
            let jv: JSONValue
            switch v {
            case .string(let x): jv = .string(x)
            case .int(let x): jv = .int(x)
            case .bool(let x): jv = .bool(x)
            case .strings(let xs): jv = .array(xs.map { .string($0) })
            }
            var kq = ""
            JSONValue.quote(k, into: &kq)
            fieldsJSON += "," + kq + ":" + jv.serialized()
        }
        write(level, logger, msg, fieldsJSON: fieldsJSON, sinks: sinks)
    }

    /// One line whose fields are already JSON (`,"k":v…`): nested objects, as Caddy's debug
    /// lines carry.
    package static func write(_ level: String, _ logger: String, _ msg: String, fieldsJSON: String) {
        let lv = LogLevel(caddyName: level) ?? .info
        let sinks = LoggingRuntime.current?.sinks(for: logger, level: lv)
        if let sinks, sinks.isEmpty { return }
        write(level, logger, msg, fieldsJSON: fieldsJSON, sinks: sinks)
    }

    private static func write(_ level: String, _ logger: String, _ msg: String, fieldsJSON: String, sinks: [LogSink]?) {
        let lv = LogLevel(caddyName: level) ?? .info
        let (s, ns) = Clock.realtime()
        guard let sinks else {
            let line = jsonLine(level, logger, msg, fieldsJSON, s, ns)
            if LogOutput.stderrIsJournal {
                var out: [UInt8] = []
                Array(line.utf8).withUnsafeBytes { LogOutput.appendWithPriorities($0, to: &out) }
                FileIO.writeAll(2, String(decoding: out, as: UTF8.self))
            } else {
                FileIO.writeAll(2, line)
            }
            return
        }
        var json: [UInt8]? = nil
        var console: [UInt8]? = nil
        for sink in sinks {
            switch sink.format {
            case .json:
                if json == nil { json = Array(jsonLine(level, logger, msg, fieldsJSON, s, ns).utf8) }
                sink.output.write(json!)
            case .console:
                if console == nil { console = consoleLine(lv, logger, msg, fieldsJSON, s, ns) }
                sink.output.write(console!)
            }
        }
    }

    private static func jsonLine(_ level: String, _ logger: String, _ msg: String, _ fieldsJSON: String, _ s: Int, _ ns: Int) -> String {
        var line = ""
        JSONValue.quote(level, into: &line)
        var out = "{\"level\":" + line + ",\"ts\":\(s)." + pad(ns / 1000, 6)
        if !logger.isEmpty {
            var q = ""
            JSONValue.quote(logger, into: &q)
            out += ",\"logger\":" + q
        }
        var m = ""
        JSONValue.quote(msg, into: &m)
        out += ",\"msg\":" + m + fieldsJSON + "}\n"
        return out
    }

    /// `2006/01/02 15:04:05.000<TAB>LEVEL<TAB>[logger<TAB>]msg[<TAB>{"k": v}]`.
    private static func consoleLine(_ level: LogLevel, _ logger: String, _ msg: String, _ fieldsJSON: String, _ s: Int, _ ns: Int) -> [UInt8] {
        let out = ByteBuffer(capacity: 256)
        ConsoleFormat.appendTime(out, seconds: s, nanos: ns)
        out.append(byte: 9)
        ConsoleFormat.appendLevel(out, level)
        out.append(byte: 9)
        if !logger.isEmpty {
            out.append(Array(logger.utf8))
            out.append(byte: 9)
        }
        out.append(Array(msg.utf8))
        if !fieldsJSON.isEmpty {
            out.append(byte: 9)
            let obj = Array(("{" + fieldsJSON.dropFirst() + "}").utf8)
            obj.withUnsafeBytes { ConsoleFormat.appendSpaced(out, $0) }
        }
        out.append(byte: 10)
        return Array(UnsafeRawBufferPointer(start: out.base + out.readerIndex, count: out.readableBytes))
    }

    package static func info(_ logger: String, _ msg: String, _ fields: [(String, Value)] = []) { write("info", logger, msg, fields) }
    package static func warn(_ logger: String, _ msg: String, _ fields: [(String, Value)] = []) { write("warn", logger, msg, fields) }
    package static func error(_ logger: String, _ msg: String, _ fields: [(String, Value)] = []) { write("error", logger, msg, fields) }

    private static func pad(_ v: Int, _ n: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, n - s.count)) + s
    }
}

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

    /// Writes one JSON line: `{"level":…,"ts":…,"logger":…,"msg":…, fields…}`.
    package static func write(_ level: String, _ logger: String, _ msg: String, _ fields: [(String, Value)] = []) {
        let (s, ns) = Clock.realtime()
        var o: [(String, JSONValue)] = [("level", .string(level))]
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
        out += ",\"msg\":" + m
        o.removeAll()
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
            out += "," + kq + ":" + jv.serialized()
        }
        out += "}\n"
        FileIO.writeAll(2, out)
    }

    package static func info(_ logger: String, _ msg: String, _ fields: [(String, Value)] = []) { write("info", logger, msg, fields) }
    package static func warn(_ logger: String, _ msg: String, _ fields: [(String, Value)] = []) { write("warn", logger, msg, fields) }
    package static func error(_ logger: String, _ msg: String, _ fields: [(String, Value)] = []) { write("error", logger, msg, fields) }

    private static func pad(_ v: Int, _ n: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, n - s.count)) + s
    }
}

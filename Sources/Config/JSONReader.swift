import JSON

/// Where a value sits in a JSON config, for errors:
/// `apps.http.servers.srv0.routes[2].handle[0].status_code`. Keys that are not plain
/// identifiers are quoted (`logger_names["example.com"]`).
package struct JSONPath: Sendable, CustomStringConvertible {
    package private(set) var description: String
    package init(_ text: String = "") { description = text }

    package func key(_ k: String) -> JSONPath {
        let plain = !k.isEmpty && k.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F || b == 0x2D
        }
        if plain { return JSONPath(description.isEmpty ? k : description + "." + k) }
        var quoted = ""
        JSONValue.quote(k, into: &quoted)
        return JSONPath(description + "[" + quoted + "]")
    }

    package func index(_ i: Int) -> JSONPath { JSONPath(description + "[\(i)]") }

    /// `path: message` (the path alone names the top level as `(top level)`).
    package func error(_ message: String) -> ConfigError {
        ConfigError((description.isEmpty ? "(top level)" : description) + ": " + message)
    }
}

/// Typed reads of JSON values that name the path on failure.
package enum JSONRead {
    package static func string(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> String {
        guard case .string(let s) = v else { throw p.error("expected string, got \(v.typeName)") }
        return s
    }

    package static func int(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> Int {
        guard case .number(let n) = v else { throw p.error("expected integer, got \(v.typeName)") }
        guard let i = Int(n) else { throw p.error("expected integer, got \(n)") }
        return i
    }

    package static func bool(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> Bool {
        guard case .bool(let b) = v else { throw p.error("expected boolean, got \(v.typeName)") }
        return b
    }

    package static func array(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> [(JSONValue, JSONPath)] {
        guard case .array(let a) = v else { throw p.error("expected array, got \(v.typeName)") }
        return a.enumerated().map { ($1, p.index($0)) }
    }

    package static func strings(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> [String] {
        var out: [String] = []
        for (e, ep) in try array(v, p) { out.append(try string(e, ep)) }
        return out
    }

    package static func ints(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> [Int] {
        var out: [Int] = []
        for (e, ep) in try array(v, p) { out.append(try int(e, ep)) }
        return out
    }

    /// A duration as Caddy's JSON writes it: integer nanoseconds, or a duration string
    /// (`"10s"`, `"1m30s"`); Berth keeps milliseconds, so nanoseconds must be whole milliseconds.
    package static func milliseconds(_ v: JSONValue, _ p: JSONPath) throws(ConfigError) -> Int {
        switch v {
        case .string(let s):
            guard let ms = DurationText.parseMilliseconds(s) else { throw p.error("invalid duration '\(s)'") }
            return ms
        case .number:
            let ns = try int(v, p)
            guard ns % 1_000_000 == 0 else { throw p.error("duration \(ns) ns is not a whole number of milliseconds") }
            return ns / 1_000_000
        default:
            throw p.error("expected duration (integer nanoseconds or a string like \"10s\"), got \(v.typeName)")
        }
    }
}

/// One JSON object being decoded. Every member must be read: `finish()` rejects the keys
/// nobody asked for, naming them, so a typo or an unsupported Caddy field is never ignored.
package final class JSONObjectReader {
    package let path: JSONPath
    package let members: [(String, JSONValue)]
    private var used: Set<String> = []

    package init(_ v: JSONValue, _ path: JSONPath) throws(ConfigError) {
        guard case .object(let o) = v else { throw path.error("expected object, got \(v.typeName)") }
        var seen: Set<String> = []
        for (k, _) in o where !seen.insert(k).inserted {
            throw path.key(k).error("duplicate key")
        }
        self.path = path
        self.members = o
    }

    package var keys: [String] { members.map(\.0) }

    /// The raw member (marked as read), nil when absent.
    package func value(_ key: String) -> JSONValue? {
        guard let v = members.first(where: { $0.0 == key })?.1 else { return nil }
        used.insert(key)
        return v
    }

    package func has(_ key: String) -> Bool { members.contains { $0.0 == key } }

    package func string(_ key: String) throws(ConfigError) -> String? {
        guard let v = value(key) else { return nil }
        return try JSONRead.string(v, path.key(key))
    }

    package func int(_ key: String) throws(ConfigError) -> Int? {
        guard let v = value(key) else { return nil }
        return try JSONRead.int(v, path.key(key))
    }

    package func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let v = value(key) else { return nil }
        return try JSONRead.bool(v, path.key(key))
    }

    package func strings(_ key: String) throws(ConfigError) -> [String]? {
        guard let v = value(key) else { return nil }
        return try JSONRead.strings(v, path.key(key))
    }

    package func ints(_ key: String) throws(ConfigError) -> [Int]? {
        guard let v = value(key) else { return nil }
        return try JSONRead.ints(v, path.key(key))
    }

    package func array(_ key: String) throws(ConfigError) -> [(JSONValue, JSONPath)]? {
        guard let v = value(key) else { return nil }
        return try JSONRead.array(v, path.key(key))
    }

    package func object(_ key: String) throws(ConfigError) -> JSONObjectReader? {
        guard let v = value(key) else { return nil }
        return try JSONObjectReader(v, path.key(key))
    }

    package func milliseconds(_ key: String) throws(ConfigError) -> Int? {
        guard let v = value(key) else { return nil }
        return try JSONRead.milliseconds(v, path.key(key))
    }

    /// A string that is one of `allowed`.
    package func choice(_ key: String, _ allowed: [String]) throws(ConfigError) -> String? {
        guard let s = try string(key) else { return nil }
        guard allowed.contains(s) else {
            throw error(key, "unknown value '\(s)' (expected \(allowed.map { "'\($0)'" }.joined(separator: ", ")))")
        }
        return s
    }

    /// An integer status code or a placeholder string (`{http.error.status_code}`), as text.
    package func statusText(_ key: String) throws(ConfigError) -> String? {
        guard let v = value(key) else { return nil }
        switch v {
        case .string(let s): return s
        case .number: return String(try JSONRead.int(v, path.key(key)))
        default: throw path.key(key).error("expected integer or placeholder string, got \(v.typeName)")
        }
    }

    /// The error for a required member that is absent.
    package func missing(_ key: String) -> ConfigError { path.key(key).error("missing (required)") }

    package func error(_ key: String, _ message: String) -> ConfigError { path.key(key).error(message) }

    /// Every member must have been read.
    package func finish() throws(ConfigError) {
        for (k, _) in members where !used.contains(k) {
            throw path.key(k).error("unknown field (Berth's JSON has no such key here)")
        }
    }

    /// Marks `key` read without using it.
    package func ignore(_ key: String) { used.insert(key) }
}

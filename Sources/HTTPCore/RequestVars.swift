/// Per-request variables: byte keys to byte values, in one reusable arena.
///
/// Caddy keeps request-scoped values in the request context (`vars`, `{http.vars.*}`), in the
/// replacer (`{http.regexp.*}` captures, `{http.matchers.file.*}`) and in the error context
/// (`{http.error.*}`). Berth keeps all of them here, keyed by the placeholder name without its
/// prefix conventions: `root`, `client_ip` (vars); `re.NAME.N` (regexp captures);
/// `file.relative` (file matcher); `error.message` (handler errors). Handlers and matchers write,
/// placeholders read. Filling and clearing it allocates nothing once its capacity has grown.
///
/// Keys compare byte-for-byte (case-sensitive, as Caddy's maps). Setting an existing key
/// replaces its value; the old bytes stay dead in the arena until `removeAll`.
package struct RequestVars: Sendable {
    private struct Slot: Sendable {
        var keyStart: Int32
        var keyLength: Int32
        var valueStart: Int32
        var valueLength: Int32
        var kind: LogValueKind
    }
    private var arena: [UInt8] = []
    private var slots: [Slot] = []

    package init() {
        arena.reserveCapacity(256)
        slots.reserveCapacity(8)
    }

    /// True when no variable is set.
    @inline(__always) package var isEmpty: Bool { slots.isEmpty }

    /// Number of variables set.
    @inline(__always) package var count: Int { slots.count }

    /// Forgets every variable, keeping storage.
    package mutating func removeAll() {
        arena.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
    }

    private func index(of key: UnsafeRawBufferPointer) -> Int? {
        arena.withUnsafeBytes { a -> Int? in
            for i in slots.indices.reversed() {
                let s = slots[i]
                guard Int(s.keyLength) == key.count else { continue }
                if key.isEmpty { return i }
                if memcmpBytes(a.baseAddress! + Int(s.keyStart), key.baseAddress!, key.count) { return i }
            }
            return nil
        }
    }

    /// Sets `key` to `value`. `value` must not point into this storage. `kind` says how the
    /// value was typed in the config (Caddy's vars hold strings, numbers and booleans; the
    /// access log's `log_append` writes them as such); placeholders read the bytes.
    package mutating func set(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, kind: LogValueKind = .string) {
        let vs = Int32(arena.count)
        HTTPFields.appendBytes(&arena, value)
        if let i = index(of: key) {
            slots[i].valueStart = vs
            slots[i].valueLength = Int32(value.count)
            slots[i].kind = kind
            return
        }
        let ks = Int32(arena.count)
        HTTPFields.appendBytes(&arena, key)
        slots.append(Slot(keyStart: ks, keyLength: Int32(key.count), valueStart: vs, valueLength: Int32(value.count), kind: kind))
    }

    /// Calls `body` with the value of `key` and its kind, or returns nil when it is not set.
    package func withTypedValue<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, LogValueKind) throws -> R) rethrows -> R? {
        guard let i = index(of: key) else { return nil }
        let s = slots[i]
        return try arena.withUnsafeBytes { a in
            try body(UnsafeRawBufferPointer(rebasing: a[Int(s.valueStart)..<Int(s.valueStart + s.valueLength)]), s.kind)
        }
    }

    /// Sets a variable with a static key.
    package mutating func set(_ key: StaticString, _ value: UnsafeRawBufferPointer) {
        set(UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount), value)
    }

    /// Sets a variable from strings (config-time values, tests).
    package mutating func set(_ key: String, _ value: String) {
        var k = key, v = value
        k.withUTF8 { kb in v.withUTF8 { vb in set(UnsafeRawBufferPointer(kb), UnsafeRawBufferPointer(vb)) } }
    }

    /// Removes `key` if set.
    package mutating func remove(_ key: UnsafeRawBufferPointer) {
        if let i = index(of: key) { slots.remove(at: i) }
    }

    /// True when `key` is set (possibly to an empty value).
    package func contains(_ key: UnsafeRawBufferPointer) -> Bool { index(of: key) != nil }

    /// Calls `body` with the value of `key`, or returns nil when it is not set.
    package func withValue<R>(_ key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard let i = index(of: key) else { return nil }
        let s = slots[i]
        return try arena.withUnsafeBytes { a in
            try body(UnsafeRawBufferPointer(rebasing: a[Int(s.valueStart)..<Int(s.valueStart + s.valueLength)]))
        }
    }

    /// Calls `body` with the value of a static key, or returns nil when it is not set.
    package func withValue<R>(_ key: StaticString, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        try withValue(UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount), body)
    }

    /// The value of `key` as a String (cold paths, tests).
    package func string(_ key: String) -> String? {
        var k = key
        return k.withUTF8 { kb in withValue(UnsafeRawBufferPointer(kb)) { String(decoding: $0, as: UTF8.self) } }
    }
}

@inline(__always)
private func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    for i in 0..<n where a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) {
        return false
    }
    return true
}

import HTTPCore
import IOCore

/// Produces a header value for one request: a literal, or a template with placeholders
/// (`{host}`, `{upstream_hostport}`…) that `Handlers` compiles — Upstream knows no templates.
package protocol HeaderValueSource: Sendable {
    /// Appends the value for `request` proxied to `upstream` to `out`.
    func write(_ request: HTTPRequest, upstream: UpstreamAddress, into out: ByteBuffer)
}

/// A fixed header value.
package struct LiteralHeaderValue: HeaderValueSource {
    package let bytes: [UInt8]
    package init(_ s: String) { bytes = Array(s.utf8) }
    package func write(_ request: HTTPRequest, upstream: UpstreamAddress, into out: ByteBuffer) { out.append(bytes) }
}

/// One `header_up` / `header_down` operation (Caddy's `headers.HeaderOps`, Caddyfile syntax
/// `[+|-|?]Field [value|search [replacement]]`).
package struct HeaderOperation: Sendable {
    package enum Kind: Sendable {
        /// `Field value`: replace every `Field` with one.
        case set
        /// `+Field value`: append another.
        case add
        /// `?Field value`: set only when absent.
        case setDefault
        /// `-Field`: delete (a trailing `*` deletes by prefix).
        case delete
        /// `Field search replacement`: substring replacement in every `Field` value.
        case replace(search: [UInt8])
    }

    package let kind: Kind
    /// Field name as configured (`*` suffix kept for prefix deletes).
    package let name: [UInt8]
    package let token: HeaderToken
    /// Value (or replacement) source; nil for deletes.
    package let value: (any HeaderValueSource)?

    package init(kind: Kind, name: String, value: (any HeaderValueSource)?) {
        self.kind = kind
        self.name = Array(name.utf8)
        token = self.name.withUnsafeBytes { HeaderToken.classify($0) }
        self.value = value
    }

    /// Applies the operation to `fields` (a request's or a response's); `scratch` is reused.
    package func apply(to fields: inout HTTPFields, request: HTTPRequest, upstream: UpstreamAddress, scratch: ByteBuffer) {
        switch kind {
        case .delete:
            if name.last == UInt8(ascii: "*") {
                let prefix = name.dropLast()
                removeAll(&fields) { n in
                    n.count >= prefix.count
                        && ASCII.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: n[0..<prefix.count]),
                                                            prefix.withUnsafeBytes { $0 })
                }
            } else {
                removeNamed(&fields)
            }
        case .set, .add, .setDefault:
            if case .setDefault = kind, firstIndex(fields) != nil { return }
            scratch.clear()
            value?.write(request, upstream: upstream, into: scratch)
            if case .set = kind { removeNamed(&fields) }
            name.withUnsafeBytes { fields.append(name: $0, value: scratch.readable, token: token) }
        case .replace(let search):
            guard !search.isEmpty else { return }
            for i in fields.entries.indices where matches(fields, i) {
                scratch.clear()
                value?.write(request, upstream: upstream, into: scratch)
                let replacement = Array(scratch.readable)
                scratch.clear()
                var changed = false
                fields.withField(i) { _, v in
                    var k = 0
                    while k < v.count {
                        if k + search.count <= v.count, search.withUnsafeBytes({ s in
                            memcmpEqual(UnsafeRawBufferPointer(rebasing: v[k..<(k + search.count)]), s)
                        }) {
                            scratch.append(replacement)
                            k += search.count
                            changed = true
                        } else {
                            scratch.append(byte: v[k])
                            k += 1
                        }
                    }
                }
                if changed {
                    let bytes = Array(scratch.readable)
                    bytes.withUnsafeBytes { fields.replaceValue(at: i, with: $0) }
                }
            }
        }
    }

    private func matches(_ fields: HTTPFields, _ i: Int) -> Bool {
        let e = fields.entries[i]
        if token != .other { return e.token == token }
        return fields.withField(i) { n, _ in name.withUnsafeBytes { ASCII.equalsIgnoringCase(n, $0) } }
    }

    private func firstIndex(_ fields: HTTPFields) -> Int? {
        fields.entries.indices.first { matches(fields, $0) }
    }

    private func removeNamed(_ fields: inout HTTPFields) {
        if token != .other {
            fields.remove(token)
            return
        }
        var i = fields.count - 1
        while i >= 0 {
            if matches(fields, i) { fields.remove(at: i) }
            i -= 1
        }
    }

    private func removeAll(_ fields: inout HTTPFields, where pred: (UnsafeRawBufferPointer) -> Bool) {
        var i = fields.count - 1
        while i >= 0 {
            if fields.withField(i, { n, _ in pred(n) }) { fields.remove(at: i) }
            i -= 1
        }
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    for i in 0..<a.count where a[i] != b[i] { return false }
    return true
}

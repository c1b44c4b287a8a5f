import HTTPCore
import IOCore

/// Caddy's `header` directive (`headers` handler, response side; `headers/headers.go`).
///
/// Operations run in Caddy's order: delete `*`, add, set (several values joined with `,`),
/// delete (exact, `prefix*`, `*suffix`, `*contains*`, case-insensitive), replace (regexp with
/// `$1` expansion, or substring). Field names are canonicalised like Go's `http.Header`; values
/// expand placeholders with ReplaceKnown. Without `defer` (and without a response matcher) the
/// operations apply at once, so later handlers see them; with `defer` — implied by any delete,
/// by `>Field` and by `?Field` — they run just before the head is written, after the handler
/// (and `encode`) set their fields.
///
/// `Server` (and `Date`) are written by the protocol, not kept in the fields: deleting them
/// leaves a suppression marker (a nameless field with their token) so the protocol omits its
/// own, matching Caddy, where `Server: Caddy` is an ordinary header a `-Server` removes.
package final class HeaderHandler: Handler, ResponseHeaderOperation {
    /// A field name: a static canonical name (the common case) or a template.
    package struct FieldName: Sendable {
        let bytes: [UInt8]
        let token: HeaderToken
        let template: Template?
        package init(_ name: String) {
            if name.contains("{") {
                template = Template(name, keepUnknown: true)
                bytes = []
                token = .other
            } else {
                let c = HeaderHandler.canonical(name)
                bytes = Array(c.utf8)
                token = bytes.withUnsafeBytes { HeaderToken.classify($0) }
                template = nil
            }
        }
    }

    package struct Replacement: Sendable {
        /// The field, or nil for every field (`*`).
        package let field: FieldName?
        /// A compiled regexp (nil for a substring search, or when the pattern has placeholders).
        package let regex: Regex?
        /// A regexp with placeholders, compiled per request (Caddy does the same).
        package let regexTemplate: Template?
        /// A substring search (JSON `search`).
        package let search: Template?
        package let replace: Template
        package init(field: FieldName?, regex: Regex?, regexTemplate: Template?, search: Template?, replace: Template) {
            self.field = field
            self.regex = regex
            self.regexTemplate = regexTemplate
            self.search = search
            self.replace = replace
        }
    }

    package struct Ops: Sendable {
        package var add: [(FieldName, Template)] = []
        package var set: [(FieldName, [Template])] = []
        package var delete: [String] = []
        package var replace: [Replacement] = []
        package init() {}
    }

    /// One set of operations (request or response side), with its deletes pre-sorted.
    struct Compiled: Sendable {
        let ops: Ops
        let deleteAll: Bool
        /// Lower-cased delete patterns other than `*`.
        let deletePatterns: [HeaderValuePattern]
        let deleteExact: [FieldName]

        init(_ ops: Ops) {
            self.ops = ops
            deleteAll = ops.delete.contains("*")
            var patterns: [HeaderValuePattern] = []
            var exact: [FieldName] = []
            for d in ops.delete where d != "*" {
                if d.hasPrefix("*") || d.hasSuffix("*") {
                    patterns.append(HeaderValuePattern(d.lowercased()))
                } else {
                    exact.append(FieldName(d))
                }
            }
            deletePatterns = patterns
            deleteExact = exact
        }
    }

    /// Response operations (nil when the handler only changes the request).
    let response: Compiled?
    /// Request operations (`request_header`, JSON `request`), applied at once.
    let request: Compiled?
    let deferred: Bool
    let require: ResponseMatcher?

    package init(ops: Ops?, deferred: Bool, require: ResponseMatcher?, requestOps: Ops? = nil) {
        response = ops.map(Compiled.init)
        request = requestOps.map(Compiled.init)
        self.deferred = deferred
        self.require = require
    }

    /// Go's `textproto.CanonicalMIMEHeaderKey`: first letter and letters after `-` upper-case,
    /// others lower-case; names with bytes outside token characters are left as they are.
    package static func canonical(_ name: String) -> String {
        let b = Array(name.utf8)
        for c in b where !(Cookies.isTokenByte(c)) { return name }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var upper = true
        for c in b {
            var x = c
            if upper, x >= 0x61, x <= 0x7A { x -= 0x20 } else if !upper, x >= 0x41, x <= 0x5A { x += 0x20 }
            out.append(x)
            upper = c == UInt8(ascii: "-")
        }
        return String(decoding: out, as: UTF8.self)
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        if let ops = self.request { applyToRequest(ops, request, response.scratch) }
        guard let ops = self.response else { return .next }
        if deferred || require != nil {
            response.request = request
            response.deferred.append(self)
        } else {
            apply(ops, request, response, response.scratch)
        }
        return .next
    }

    /// Deferred: runs just before the head is written.
    package func apply(to response: HTTPResponse) {
        guard let request = response.request, let ops = self.response else { return }
        if let req = require, !req.matches(status: response.status, fields: response.fields) { return }
        apply(ops, request, response, response.deferredScratch)
    }

    /// Caddy's `ApplyToRequest`: the Host (kept as the request's authority, not as a field)
    /// takes part as a last `Host` field, so operations on `Host` change where the request
    /// goes (`{host}`, `reverse_proxy`'s Host header); its last value afterwards becomes the
    /// authority (none left: none). The head as received is kept for the access log.
    func applyToRequest(_ ops: Compiled, _ r: HTTPRequest, _ scratch: ByteBuffer) {
        r.preserveOriginalFields()
        if let a = r.authorityRange {
            r.withLineBytes(a) { r.fields.append(.host, value: $0) }
        } else {
            r.fields.append(.host, value: UnsafeRawBufferPointer(start: nil, count: 0))
        }
        apply(ops, r, r, scratch)
        var last: Int? = nil
        for i in 0..<r.fields.count where r.fields.entries[i].token == .host { last = i }
        if let i = last, r.fields.entries[i].valueLength > 0 {
            let range = r.fields.withField(i) { _, v in r.appendLine(v) }
            r.authorityRange = range
        } else {
            // No Host left (or an empty one): the proxy then sends the upstream's address,
            // as Go does for an empty `r.Host`.
            r.authorityRange = nil
        }
        if r.fields.mayContain(.host) { r.fields.remove(.host) }
    }

    /// Resolves a field name (into `scratch` after `mark` for templates).
    @inline(__always)
    func withName<R>(_ f: FieldName, _ r: HTTPRequest, _ scratch: ByteBuffer, _ body: (UnsafeRawBufferPointer, HeaderToken) -> R) -> R {
        if let t = f.template {
            // Expanded into `scratch`, then copied to the stack: values are built in `scratch`
            // next and may move it.
            let mark = scratch.writerIndex
            t.expand(r, into: scratch)
            let n = scratch.writerIndex - mark
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(n, 1)) { tmp in
                for k in 0..<n { tmp[k] = scratch.base[mark + k] }
                scratch.writerIndex = mark
                let name = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[0..<n]))
                return body(name, HeaderToken.classify(name))
            }
        }
        return f.bytes.withUnsafeBytes { body($0, f.token) }
    }

    static func removeField(_ fields: inout HTTPFields, _ name: UnsafeRawBufferPointer, _ token: HeaderToken) {
        var i = 0
        while i < fields.count {
            let hit = fields.withField(i) { n, _ in
                token != .other ? fields.entries[i].token == token : Template.equalsIgnoringCase(n, name)
            }
            if hit { fields.remove(at: i) } else { i += 1 }
        }
    }

    func apply<Target: HeaderFieldsOwner>(_ c: Compiled, _ r: HTTPRequest, _ response: Target, _ scratch: ByteBuffer) {
        let ops = c.ops
        let isResponse = Target.isResponse
        scratch.clear()
        if c.deleteAll {
            response.fields.removeAll()
            if isResponse { HeaderHandler.suppress(.server, &response.fields) }
        }
        for (name, value) in ops.add {
            withName(name, r, scratch) { n, token in
                let mark = scratch.writerIndex
                value.expand(r, into: scratch)
                let v = UnsafeRawBufferPointer(start: scratch.base + mark, count: scratch.writerIndex - mark)
                if isResponse && (token == .server || token == .date) { HeaderHandler.removeField(&response.fields, n, token) }
                response.fields.append(name: n, value: v, token: token)
                scratch.writerIndex = mark
            }
        }
        for (name, values) in ops.set {
            withName(name, r, scratch) { n, token in
                let mark = scratch.writerIndex
                for (k, t) in values.enumerated() {
                    if k > 0 { scratch.append(byte: UInt8(ascii: ",")) }
                    t.expand(r, into: scratch)
                }
                let v = UnsafeRawBufferPointer(start: scratch.base + mark, count: scratch.writerIndex - mark)
                HeaderHandler.removeField(&response.fields, n, token)
                response.fields.append(name: n, value: v, token: token)
                scratch.writerIndex = mark
            }
        }
        for name in c.deleteExact {
            withName(name, r, scratch) { n, token in
                HeaderHandler.removeField(&response.fields, n, token)
                if isResponse && (token == .server || token == .date) { HeaderHandler.suppress(token, &response.fields) }
            }
        }
        if !c.deletePatterns.isEmpty { deleteMatching(c.deletePatterns, response) }
        for rep in ops.replace { replace(rep, r, response, scratch) }
    }

    /// Adds a nameless field with `token`: the protocol then omits its own Server/Date.
    static func suppress(_ token: HeaderToken, _ fields: inout HTTPFields) {
        fields.append(name: UnsafeRawBufferPointer(start: nil, count: 0), value: UnsafeRawBufferPointer(start: nil, count: 0), token: token)
    }

    func deleteMatching<Target: HeaderFieldsOwner>(_ deletePatterns: [HeaderValuePattern], _ response: Target) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { lower in
            func matches(_ name: UnsafeRawBufferPointer) -> Bool {
                let n = min(name.count, lower.count)
                for k in 0..<n {
                    var c = name[k]
                    if c >= 0x41 && c <= 0x5A { c |= 0x20 }
                    lower[k] = c
                }
                let ln = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: lower[0..<n]))
                return deletePatterns.contains { $0.matches(ln) }
            }
            var i = 0
            while i < response.fields.count {
                let hit = response.fields.withField(i) { n, _ in !n.isEmpty && matches(n) }
                if hit { response.fields.remove(at: i) } else { i += 1 }
            }
            let server: StaticString = "server"
            if Target.isResponse, matches(UnsafeRawBufferPointer(start: server.utf8Start, count: server.utf8CodeUnitCount)),
               !response.fields.contains(.server) {
                HeaderHandler.suppress(.server, &response.fields)
            }
        }
    }

    func replace<Target: HeaderFieldsOwner>(_ rep: Replacement, _ r: HTTPRequest, _ response: Target, _ scratch: ByteBuffer) {
        let mark = scratch.writerIndex
        var regex = rep.regex
        if regex == nil, let t = rep.regexTemplate {
            t.expand(r, into: scratch)
            regex = try? Regex(String(decoding: UnsafeRawBufferPointer(start: scratch.base + mark, count: scratch.writerIndex - mark), as: UTF8.self))
            scratch.writerIndex = mark
            if regex == nil { return }
        }
        // Expand the replacement and the search into a stack copy: the scratch buffer receives
        // the new values and may move while they are built.
        rep.replace.expand(r, into: scratch)
        let replLen = scratch.writerIndex - mark
        rep.search?.expand(r, into: scratch)
        let total = scratch.writerIndex - mark
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(total, 1)) { tmp in
            for k in 0..<total { tmp[k] = scratch.base[mark + k] }
            scratch.writerIndex = mark
            let repl = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[0..<replLen]))
            let search = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[replLen..<total]))
            func run(_ nameBytes: UnsafeRawBufferPointer?, _ token: HeaderToken) {
                for i in 0..<response.fields.count {
                    let e = response.fields.entries[i]
                    if e.nameLength == 0 { continue }
                    if let nb = nameBytes {
                        let hit = token != .other ? e.token == token : response.fields.withField(i) { n, _ in Template.equalsIgnoringCase(n, nb) }
                        if !hit { continue }
                    }
                    let outStart = scratch.writerIndex
                    response.fields.withField(i) { _, v in
                        if let re = regex {
                            re.replaceAll(v, with: repl, into: scratch)
                        } else {
                            HeaderHandler.replaceSubstring(v, search, repl, into: scratch)
                        }
                    }
                    let nv = UnsafeRawBufferPointer(start: scratch.base + outStart, count: scratch.writerIndex - outStart)
                    response.fields.replaceValue(at: i, with: nv)
                    scratch.writerIndex = outStart
                }
            }
            if let f = rep.field {
                withName(f, r, scratch) { n, token in run(n, token) }
            } else {
                run(nil, .other)
            }
        }
        scratch.writerIndex = mark
    }

    /// Go's `strings.ReplaceAll` (an empty search inserts `repl` around every rune).
    static func replaceSubstring(_ s: UnsafeRawBufferPointer, _ search: UnsafeRawBufferPointer, _ repl: UnsafeRawBufferPointer,
                                 into out: ByteBuffer) {
        if search.isEmpty {
            var i = 0
            out.append(repl)
            while i < s.count {
                let w = Regex.rune(s, i).1
                out.append(UnsafeRawBufferPointer(rebasing: s[i..<(i + w)]))
                out.append(repl)
                i += w
            }
            return
        }
        var i = 0
        var last = 0
        while i + search.count <= s.count {
            var hit = true
            for k in 0..<search.count where s[i + k] != search[k] { hit = false; break }
            if hit {
                out.append(UnsafeRawBufferPointer(rebasing: s[last..<i]))
                out.append(repl)
                i += search.count
                last = i
            } else {
                i += 1
            }
        }
        out.append(UnsafeRawBufferPointer(rebasing: s[last..<s.count]))
    }
}

/// What a header operation changes: the request's fields or the response's.
package protocol HeaderFieldsOwner: AnyObject {
    var fields: HTTPFields { get set }
    /// Response fields stand in for the protocol's own `Server` / `Date` (suppression markers).
    static var isResponse: Bool { get }
}

extension HTTPResponse: HeaderFieldsOwner {
    package static var isResponse: Bool { true }
}

extension HTTPRequest: HeaderFieldsOwner {
    package static var isResponse: Bool { false }
}

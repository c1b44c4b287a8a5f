import HTTPCore
import IOCore

/// Caddy's `respond` / `static_response`: a fixed status and an optional (templated) body.
package final class RespondHandler: Handler {
    /// When the Content-Type is decided (caddy-behavior §9; Caddy looks at the expanded body).
    private enum ContentTypeRule {
        /// No automatic Content-Type: empty body, or a configured Content-Type header.
        case none
        /// Static body: decided once at config time.
        case fixed(StaticString)
        /// The body has placeholders: decided per request from the expanded bytes.
        case fromBody
    }

    /// Status code (default 200).
    package let status: Int
    /// Body template; its placeholders are expanded per request.
    package let body: Template
    /// Pre-expanded body when the template has no placeholders.
    private let staticBody: [UInt8]
    private let isStatic: Bool
    private let contentTypeRule: ContentTypeRule
    /// Extra header fields (`respond` has none today; `redir` uses Location).
    package let headers: [(name: String, value: Template)]
    /// `close`: close the connection after responding.
    package let close: Bool
    /// The status was not configured: in an error route the error's status is the default
    /// (Caddy's static_response), elsewhere 200.
    package let statusIsDefault: Bool
    /// A status written as a placeholder (`redir … {code}`), parsed per request; a value that
    /// is not a number fails the request with 500, as in Caddy.
    package let statusTemplate: Template?

    package init(status: Int = 200, body: Template, headers: [(name: String, value: Template)] = [], close: Bool = false,
                 statusIsDefault: Bool = false, statusTemplate: Template? = nil) {
        self.status = status
        self.statusIsDefault = statusIsDefault
        self.statusTemplate = statusTemplate
        self.body = body
        self.headers = headers
        self.close = close
        self.isStatic = body.isStatic
        self.staticBody = body.isStatic ? body.staticBytes : []
        if headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            contentTypeRule = .none
        } else if body.isStatic {
            let ct = staticBody.withUnsafeBytes { RespondHandler.contentType(for: $0) }
            contentTypeRule = ct.map { .fixed($0) } ?? .none
        } else {
            contentTypeRule = .fromBody
        }
    }

    /// The Content-Type Caddy sets for a body: none when empty; `application/json` when the
    /// space-trimmed body is longer than 2 bytes, starts and ends with `{}` or `[]` and is valid
    /// JSON; `text/plain; charset=utf-8` otherwise (`staticresp.go` ServeHTTP).
    static func contentType(for body: UnsafeRawBufferPointer) -> StaticString? {
        if body.isEmpty { return nil }
        // strings.TrimSpace, ASCII part (\t \n \v \f \r and space).
        @inline(__always) func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }
        var lo = 0, hi = body.count
        while lo < hi, isSpace(body[lo]) { lo += 1 }
        while hi > lo, isSpace(body[hi - 1]) { hi -= 1 }
        if hi - lo > 2 {
            let open = body[lo], close = body[hi - 1]
            if (open == UInt8(ascii: "{") && close == UInt8(ascii: "}")) || (open == UInt8(ascii: "[") && close == UInt8(ascii: "]")),
               JSONShape.isValid(UnsafeRawBufferPointer(rebasing: body[lo..<hi])) {
                return "application/json"
            }
        }
        return "text/plain; charset=utf-8"
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        let scratch = response.scratch
        scratch.clear()
        // A templated body is expanded first, into the front of the scratch buffer; header
        // values are expanded after it, one at a time.
        var bodyLength = 0
        if !isStatic {
            body.expand(request, into: scratch)
            bodyLength = scratch.readableBytes
        }
        // Configured headers replace fields of the same name set earlier (`w.Header()[f] = v`).
        for h in headers {
            let mark = scratch.writerIndex
            h.value.expand(request, into: scratch)
            let value = UnsafeRawBufferPointer(start: scratch.base + mark, count: scratch.writerIndex - mark)
            var name = h.name
            name.withUTF8 { nb in
                let nr = UnsafeRawBufferPointer(nb)
                let token = HeaderToken.classify(nr)
                if !response.fields.entries.isEmpty {
                    if token != .other { response.fields.remove(token) } else { response.fields.remove(name: h.name) }
                }
                response.fields.append(name: nr, value: value, token: token)
            }
            scratch.writerIndex = mark
        }
        // Caddy sets a Content-Type only when none is set yet (e.g. by `header`).
        if !response.fields.contains(.contentType) {
            switch contentTypeRule {
            case .none: break
            case .fixed(let ct): response.fields.append(.contentType, ct)
            case .fromBody:
                let b = UnsafeRawBufferPointer(start: scratch.base + scratch.readerIndex, count: bodyLength)
                if let ct = RespondHandler.contentType(for: b) { response.fields.append(.contentType, ct) }
            }
        }
        // The status comes last, as in Caddy: a placeholder status that is not a number fails
        // the request with 500, the headers above already set.
        if let t = statusTemplate {
            let mark = scratch.writerIndex
            t.expand(request, into: scratch)
            let code = StatusParsing.atoi(UnsafeRawBufferPointer(start: scratch.base + mark, count: scratch.writerIndex - mark))
            scratch.writerIndex = mark
            guard let code else {
                return HandlerError.fail(request, response, status: 500, trace: "Handlers.RespondHandler (Respond.swift)")
            }
            response.status = code
        } else if statusIsDefault && response.errorStatus != 0 {
            response.status = response.errorStatus
        } else {
            response.status = status
        }
        if close { response.closeConnection = true }
        if isStatic {
            staticBody.withUnsafeBytes { response.send(body: $0) }
        } else {
            response.send(body: UnsafeRawBufferPointer(start: scratch.base + scratch.readerIndex, count: bodyLength))
        }
        return .done
    }
}

/// A small JSON validator (RFC 8259) used only at config time.
enum JSONShape {
    static func isValid(_ a: [UInt8]) -> Bool { a.withUnsafeBytes { isValid($0) } }

    static func isValid(_ b: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        func ws() { while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }
        func value(_ depth: Int) -> Bool {
            guard depth < 512 else { return false }
            ws()
            guard i < b.count else { return false }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1; ws()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return true }
                while true {
                    ws()
                    guard string() else { return false }
                    ws()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { return false }
                    i += 1
                    guard value(depth + 1) else { return false }
                    ws()
                    guard i < b.count else { return false }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return true }
                    return false
                }
            case UInt8(ascii: "["):
                i += 1; ws()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return true }
                while true {
                    guard value(depth + 1) else { return false }
                    ws()
                    guard i < b.count else { return false }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return true }
                    return false
                }
            case UInt8(ascii: "\""):
                return string()
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            default: return number()
            }
        }
        func literal(_ s: String) -> Bool {
            let u = Array(s.utf8)
            guard i + u.count <= b.count else { return false }
            for k in 0..<u.count where b[i + k] != u[k] { return false }
            i += u.count
            return true
        }
        func string() -> Bool {
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { return false }
            i += 1
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "\"") { i += 1; return true }
                if c < 0x20 { return false }
                if c == UInt8(ascii: "\\") {
                    i += 1
                    guard i < b.count else { return false }
                    if b[i] == UInt8(ascii: "u") {
                        guard i + 4 < b.count else { return false }
                        for k in 1...4 where URLDecoding.hex(b[i + k]) == nil { return false }
                        i += 4
                    } else if !"\"\\/bfnrt".utf8.contains(b[i]) {
                        return false
                    }
                }
                i += 1
            }
            return false
        }
        func number() -> Bool {
            let start = i
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            // RFC 8259 §6: int = zero / ( digit1-9 *DIGIT ) (no leading zeros).
            guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { return false }
            if b[i] == 0x30 {
                i += 1
            } else {
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            }
            if i < b.count, b[i] == UInt8(ascii: ".") {
                i += 1
                var f = 0
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1; f += 1 }
                guard f > 0 else { return false }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                var e = 0
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1; e += 1 }
                guard e > 0 else { return false }
            }
            return i > start
        }
        guard value(0) else { return false }
        ws()
        return i == b.count
    }
}

import HTTPCore
import IOCore

/// Caddy's `respond` / `static_response`: a fixed status and an optional (templated) body.
package final class RespondHandler: Handler {
    /// Status code (default 200).
    package let status: Int
    /// Body template; its placeholders are expanded per request.
    package let body: Template
    /// Pre-expanded body when the template has no placeholders.
    private let staticBody: [UInt8]
    private let isStatic: Bool
    /// Content-Type chosen at config time as Caddy does (JSON object/array → application/json,
    /// other non-empty bodies → text/plain; charset=utf-8, empty → none).
    private let contentType: StaticString?
    /// Extra header fields (`respond` has none today; `redir` uses Location).
    package let headers: [(name: String, value: Template)]
    /// `close`: close the connection after responding.
    package let close: Bool

    package init(status: Int = 200, body: Template, headers: [(name: String, value: Template)] = [], close: Bool = false) {
        self.status = status
        self.body = body
        self.headers = headers
        self.close = close
        self.isStatic = body.isStatic
        self.staticBody = body.isStatic ? body.staticBytes : []
        if body.source.isEmpty || headers.contains(where: { $0.name.lowercased() == "content-type" }) {
            contentType = nil
        } else if RespondHandler.looksLikeJSONContainer(body.source) {
            contentType = "application/json"
        } else {
            contentType = "text/plain; charset=utf-8"
        }
    }

    /// Caddy sets application/json when the trimmed body parses as a JSON object or array. This
    /// checks the shape (balanced brackets outside strings) rather than full JSON validity.
    static func looksLikeJSONContainer(_ s: String) -> Bool {
        let b = Array(s.utf8)
        var lo = 0, hi = b.count
        while lo < hi, b[lo] == 0x20 || b[lo] == 0x0A || b[lo] == 0x0D || b[lo] == 0x09 { lo += 1 }
        while hi > lo, b[hi - 1] == 0x20 || b[hi - 1] == 0x0A || b[hi - 1] == 0x0D || b[hi - 1] == 0x09 { hi -= 1 }
        guard hi - lo >= 2 else { return false }
        let open = b[lo], close = b[hi - 1]
        guard (open == UInt8(ascii: "{") && close == UInt8(ascii: "}")) || (open == UInt8(ascii: "[") && close == UInt8(ascii: "]")) else { return false }
        return JSONShape.isValid(Array(b[lo..<hi]))
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        response.status = status
        if let ct = contentType { response.fields.append(.contentType, ct) }
        if !headers.isEmpty {
            let scratch = response.scratch
            for h in headers {
                scratch.clear()
                h.value.expand(request, into: scratch)
                var name = h.name
                name.withUTF8 { nb in
                    let nr = UnsafeRawBufferPointer(nb)
                    response.fields.append(name: nr, value: scratch.readable, token: HeaderToken.classify(nr))
                }
            }
        }
        if close { response.closeConnection = true }
        if isStatic {
            staticBody.withUnsafeBytes { response.send(body: $0) }
        } else {
            let scratch = response.scratch
            scratch.clear()
            body.expand(request, into: scratch)
            response.send(body: scratch.readable)
        }
        return .done
    }
}

/// A small JSON validator (RFC 8259) used only at config time.
enum JSONShape {
    static func isValid(_ b: [UInt8]) -> Bool {
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
            guard i + u.count <= b.count, Array(b[i..<(i + u.count)]) == u else { return false }
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
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1; digits += 1 }
            guard digits > 0 else { return false }
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

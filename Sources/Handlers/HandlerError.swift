import HTTPCore
import IOCore

/// Handler errors (Caddy's `caddyhttp.HandlerError`): a handler that fails records the status
/// on the response and the message in the request's variables, and returns `.done` without
/// sending; `ServerHandler` then runs the error routes with `{http.error.*}` set.
package enum HandlerError {
    /// Fails the request with `status`; `message` is `{http.error.message}` (Caddy uses the
    /// status text when the error has no message).
    package static func fail(_ request: HTTPRequest, _ response: HTTPResponse, status: Int,
                             message: UnsafeRawBufferPointer? = nil, trace: StaticString) -> HandlerResult {
        response.errorStatus = status
        if let m = message {
            request.vars.set("http.error.message", m)
        } else {
            let text = HTTPStatus.reason(status)
            request.vars.set("http.error.message", UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }
        request.vars.set("http.error.trace", UnsafeRawBufferPointer(start: trace.utf8Start, count: trace.utf8CodeUnitCount))
        return .done
    }

    /// Sets `{http.error.status_code}`, `{http.error.status_text}` and `{http.error.id}` (a
    /// random 9-character id, like Caddy's) before the error routes run.
    static func publish(_ status: Int, _ request: HTTPRequest) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buf in
            var v = status, n = 0
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &digits) { d in
                repeat {
                    d[n] = UInt8(truncatingIfNeeded: v % 10) + 0x30
                    v /= 10
                    n += 1
                } while v > 0 && n < 8
                for k in 0..<n { buf[k] = d[n - 1 - k] }
            }
            request.vars.set("http.error.status_code", UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buf[0..<n])))
            let alphabet: StaticString = "abcdefghijkmnopqrstuvwxyz0123456789"
            var g = SystemRandomNumberGenerator()
            for k in 0..<9 {
                buf[k] = alphabet.utf8Start[Int(g.next(upperBound: UInt64(alphabet.utf8CodeUnitCount)))]
            }
            request.vars.set("http.error.id", UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buf[0..<9])))
        }
        let text = HTTPStatus.reason(status)
        request.vars.set("http.error.status_text", UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        if !request.vars.contains(key("http.error.message")) {
            request.vars.set("http.error.message", UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }
    }

    @inline(__always)
    static func key(_ s: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
    }
}

/// Caddy's `error` directive (`static_error`): fails the request with a status (default 500)
/// and a message (placeholders known to Caddy are expanded; unknown ones stay).
package final class ErrorHandler: Handler {
    let status: Int
    let statusTemplate: Template?
    let message: Template

    package init(status: Int?, statusTemplate: Template? = nil, message: Template) {
        self.status = status ?? 500
        self.statusTemplate = statusTemplate
        self.message = message
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        var code = status
        let scratch = response.scratch
        if let t = statusTemplate {
            scratch.clear()
            t.expand(request, into: scratch)
            guard let c = StatusParsing.atoi(scratch.readable) else {
                return HandlerError.fail(request, response, status: 500, trace: "Handlers.ErrorHandler (HandlerError.swift)")
            }
            code = c
        }
        scratch.clear()
        message.expand(request, into: scratch)
        return HandlerError.fail(request, response, status: code, message: scratch.readable,
                                 trace: "Handlers.ErrorHandler (HandlerError.swift)")
    }
}

/// Caddy's `abort`: close the connection without a response.
package final class AbortHandler: Handler {
    package init() {}
    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        response.abort()
        return .done
    }
}

/// Status codes written as placeholders, parsed per request like Go's `strconv.Atoi`.
package enum StatusParsing {
    package static func atoi(_ b: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        var neg = false
        if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            neg = b[i] == UInt8(ascii: "-")
            i += 1
        }
        guard i < b.count else { return nil }
        var v = 0
        while i < b.count {
            let c = b[i]
            guard c >= 0x30, c <= 0x39, v < 1 << 40 else { return nil }
            v = v * 10 + Int(c - 0x30)
            i += 1
        }
        return neg ? -v : v
    }
}

/// `handle_errors <codes…>`: matches the current error's status (`{http.error.status_code}`)
/// against classes (`4xx` = 4) and exact codes.
package struct ErrorStatusMatcher: RequestMatcher {
    let classes: [Int]
    let codes: [Int]
    package init(classes: [Int], codes: [Int]) {
        self.classes = classes
        self.codes = codes
    }
    package func matches(_ request: HTTPRequest) -> Bool {
        guard let s = request.vars.withValue("http.error.status_code", { StatusParsing.atoi($0) }) ?? nil else { return false }
        return codes.contains(s) || classes.contains { s >= $0 * 100 && s <= $0 * 100 + 99 }
    }
}

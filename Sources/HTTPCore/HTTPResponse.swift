import IOCore

/// Where a protocol connection receives a handler's response. HTTP/1, HTTP/2 and HTTP/3
/// each implement it; handlers only ever see `HTTPResponse`.
package protocol ResponseSink: AnyObject {
    /// Sends `response`'s head and the complete body; the response is finished.
    func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer)
    /// Sends the head; `contentLength` nil means the length is unknown (chunked on HTTP/1.1).
    func sendHead(_ response: HTTPResponse, contentLength: Int64?)
    /// Sends part of the body after `sendHead`.
    func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer)
    /// Ends a streamed body.
    func finish(_ response: HTTPResponse)
    /// Ends the exchange without a response and closes the connection (Caddy's `abort`,
    /// Go's `http.ErrAbortHandler`). The default uses `ResponseFlowControl`'s
    /// `abortStreamedResponse` (which writes nothing and closes) when the sink has it; a sink
    /// without either sends an empty response and closes the connection after it.
    func abort(_ response: HTTPResponse)
    /// Sends `response`'s head with `Content-Length: count`, then `count` bytes of `file` from
    /// `offset` as the complete body, without copying them through a handler buffer when the
    /// transport allows it (plain HTTP/1: sendfile(2) from the page cache). Returns false,
    /// having sent nothing, when the sink cannot do that; `HTTPResponse.send(file:…)` then
    /// reads the file itself in chunks (`FileBodyPump`). The default (HTTP/2 streams,
    /// decorators, test sinks) returns false; see `ResponseFile.swift`.
    func sendFileRegion(_ response: HTTPResponse, file: SharedFile, offset: Int64, count: Int64) -> Bool
}

extension ResponseSink {
    package func abort(_ response: HTTPResponse) {
        if let flow = self as? any ResponseFlowControl {
            flow.abortStreamedResponse(response)
            return
        }
        response.closeConnection = true
        sendComplete(response, body: UnsafeRawBufferPointer(start: nil, count: 0))
    }
}

/// A sink installed in front of the protocol's sink for one response (encode's compressor).
/// `HTTPResponse` keeps it alive while installed; it forwards to `HTTPResponse.protocolSink`.
package protocol ResponseSinkDecorator: ResponseSink {
    /// The response stopped using this decorator (finished, reset, or handed to the error
    /// routes): release per-response state, e.g. return pooled resources.
    func detach(from response: HTTPResponse)
}

/// A response being produced for one request. Owned by the connection (or stream) and reused;
/// handlers set `status` and `fields`, then call one of the send methods.
@usableFromInline
package final class HTTPResponse {
    /// Status code; 200 unless a handler changes it.
    package var status: Int = 200
    /// Response header fields the handler set (Date, Server, Content-Length and framing are
    /// added by the protocol encoder).
    package var fields = HTTPFields()
    /// Set once the head has gone to the sink.
    package private(set) var headSent = false
    /// Set once the response is complete.
    package private(set) var finished = false
    /// Nothing answered the request: the server sent its implicit empty `200`
    /// (`sendUnanswered`); the access log records it as Caddy's `NOP` with status 0.
    package private(set) var unanswered = false
    /// Body bytes handed to the sink (the access log's `size`).
    package private(set) var bodyBytes: Int64 = 0
    /// Ask the protocol to close the connection after this response (`respond { close }`).
    package var closeConnection = false
    /// Deferred header operations run just before the head is sent (Caddy's `header { defer }`).
    package var deferred: [any ResponseHeaderOperation] = []
    /// Where the response goes: the protocol connection, or a decorator in front of it.
    package unowned(unsafe) var sink: any ResponseSink
    /// The protocol connection that writes this response (`sink` when no decorator is set).
    package unowned(unsafe) let protocolSink: any ResponseSink
    /// `protocolSink` as `ResponseFlowControl` (see `flowControl`); unowned like it.
    unowned(unsafe) var cachedFlowControl: (any ResponseFlowControl)? = nil
    var flowControlResolved = false
    /// The decorator installed as `sink` (strong: `sink` is unowned), or nil.
    package private(set) var decorator: (any ResponseSinkDecorator)? = nil
    /// A handler error's status (Caddy's `HandlerError`), 0 when there is none. A handler that
    /// fails sets it and returns `.done` without sending; the server then runs its error
    /// routes (`handle_errors`) or sends an empty response with this status.
    package var errorStatus: Int = 0
    /// Scratch space handlers may use to expand templates before sending (reused, cleared by
    /// whoever uses it).
    package let scratch = ByteBuffer(capacity: 512)
    /// Scratch space for deferred header operations, which run inside `send` while `scratch`
    /// may still hold the body being sent. Allocated on first use (once per connection).
    package lazy var deferredScratch = ByteBuffer(capacity: 256)
    /// The request this response answers, for deferred header operations that expand
    /// placeholders (`header { defer }`); set by the handler that defers, nil otherwise.
    package unowned(unsafe) var request: HTTPRequest? = nil
    /// Where a `.pending` handler's error goes (`failPending`); set by the server's top handler
    /// (kept across requests: a connection serves one runtime).
    package var errorRouter: (any PendingErrorRouter)? = nil
    /// Trailer fields sent after a streamed body (RFC 9110 §6.5): HTTP/1.1 chunked responses
    /// and HTTP/2 (a HEADERS frame after the DATA). Set before `finish()`; reverse_proxy
    /// forwards the upstream's trailers here.
    package var trailers = HTTPFields.unreserved()

    package init(sink: any ResponseSink) {
        self.sink = sink
        self.protocolSink = sink
        deferred.reserveCapacity(4)
    }

    /// Resets for the next request, keeping storage.
    @inline(__always)
    package func reset() {
        status = 200
        fields.removeAll()
        headSent = false
        finished = false
        unanswered = false
        bodyBytes = 0
        closeConnection = false
        errorStatus = 0
        request = nil
        if trailers.count > 0 { trailers.removeAll() }
        if !deferred.isEmpty { deferred.removeAll(keepingCapacity: true) }
        if decorator != nil { removeDecorator() }
    }

    /// Runs the deferred header operations once (a decorator calls this after its own header
    /// changes, so `header { defer }` sees them, as in Caddy where `header` wraps `encode`).
    @inline(__always)
    package func runDeferred() {
        if deferred.isEmpty { return }
        for op in deferred { op.apply(to: self) }
        deferred.removeAll(keepingCapacity: true)
    }

    /// Puts `d` in front of the current sink until the response ends. One decorator at a time:
    /// a second one replaces the first (the innermost `encode` wins).
    package func install(_ d: any ResponseSinkDecorator) {
        precondition(!headSent, "response head already sent")
        if decorator != nil { removeDecorator() }
        decorator = d
        sink = d
    }

    /// Removes the decorator (if any) and tells it so; the protocol sink takes over.
    package func removeDecorator() {
        guard let d = decorator else { return }
        sink = protocolSink
        decorator = nil
        d.detach(from: self)
    }

    /// Ends the exchange with no response at all and closes the connection (`abort`).
    package func abort() {
        precondition(!headSent, "response head already sent")
        removeDecorator()
        deferred.removeAll(keepingCapacity: true)
        headSent = true
        finished = true
        protocolSink.abort(self)
    }

    /// Sends the head and a complete body.
    package func send(body: UnsafeRawBufferPointer) {
        precondition(!headSent, "response head already sent")
        if decorator == nil { runDeferred() }
        headSent = true
        finished = true
        bodyBytes = Int64(body.count)
        sink.sendComplete(self, body: body)
    }

    /// Sends the head and a complete static body.
    package func send(_ body: StaticString) {
        send(body: UnsafeRawBufferPointer(start: body.utf8Start, count: body.utf8CodeUnitCount))
    }

    /// Sends a head with no body.
    package func sendEmpty() {
        send(body: UnsafeRawBufferPointer(start: nil, count: 0))
    }

    /// The answer to a request no handler answered: `200` with an empty body on the wire (Go
    /// writes it when the handler chain returns without writing), logged as Caddy does — msg
    /// `NOP`, status 0 (`unanswered`).
    package func sendUnanswered() {
        unanswered = true
        sendEmpty()
    }

    /// Sends the head and `count` bytes of `file` from `offset` as the whole body (file_server):
    /// zero-copy when the protocol sink can (`ResponseSink.sendFileRegion`), otherwise read
    /// with pread(2) in chunks under the protocol's flow control (`FileBodyPump`). The status
    /// must allow a body and the request must not be HEAD (send the head with `sendHead` and
    /// `finish` instead). Returns `.done` when the response is complete or `.pending` while
    /// the pump still runs; the handler returns that result.
    package func send(file: SharedFile, offset: Int64, count: Int64) -> HandlerResult {
        precondition(!headSent, "response head already sent")
        if decorator == nil && count > 0 {
            runDeferred()
            // Marked sent first, as `send(body:)` does: the sink may complete the exchange (and
            // log it) before it returns.
            headSent = true
            finished = true
            bodyBytes = count
            if protocolSink.sendFileRegion(self, file: file, offset: offset, count: count) { return .done }
            headSent = false
            finished = false
            bodyBytes = 0
        }
        return FileBodyPump.start(self, file: file, offset: offset, count: count)
    }

    /// Starts a streamed response.
    package func sendHead(contentLength: Int64?) {
        precondition(!headSent, "response head already sent")
        if decorator == nil { runDeferred() }
        headSent = true
        sink.sendHead(self, contentLength: contentLength)
    }

    /// Writes part of a streamed body.
    package func write(_ bytes: UnsafeRawBufferPointer) {
        precondition(headSent && !finished)
        bodyBytes += Int64(bytes.count)
        sink.sendBody(self, bytes)
    }

    /// Ends a streamed response.
    package func finish() {
        precondition(headSent && !finished)
        finished = true
        sink.finish(self)
    }
}

/// Runs the server's error routes (`handle_errors`) for a handler that failed after it
/// returned `.pending` (reverse_proxy's 502/503/504). The server's top handler installs itself
/// on every response it handles.
package protocol PendingErrorRouter: AnyObject {
    /// `response.errorStatus` is set and nothing was sent: run the error routes (or send an
    /// empty response with that status).
    func routePendingError(_ request: HTTPRequest, _ response: HTTPResponse)
    /// A handler that suspended the route walk (`request.routeSuspension`) is done: run the
    /// rest of the routes from where it stopped (on the request's loop).
    func resumeRouting(_ request: HTTPRequest, _ response: HTTPResponse)
}

extension HTTPResponse {
    /// A `.pending` handler failed before sending anything (Caddy's handler error): the error
    /// routes run with `{http.error.*}` set, or the answer is an empty `status` response.
    /// `message` becomes `{http.error.message}`.
    package func failPending(_ request: HTTPRequest, status: Int, message: String?) {
        precondition(!headSent, "response head already sent")
        errorStatus = status
        if let message {
            var m = message
            m.withUTF8 { request.vars.set("http.error.message", UnsafeRawBufferPointer($0)) }
        }
        if let r = errorRouter {
            r.routePendingError(request, self)
        } else {
            fields.removeAll()
            self.status = status
            sendEmpty()
        }
    }
}

/// A header change applied to a response just before its head is written.
package protocol ResponseHeaderOperation: Sendable {
    func apply(to response: HTTPResponse)
}

/// What a handler did with a request.
package enum HandlerResult: Sendable {
    /// Not handled: run the next handler.
    case next
    /// The response was sent (or will be sent synchronously before returning).
    case done
    /// The handler will complete the response later on the same event loop.
    case pending
}

/// A request handler: respond, redir, file_server, reverse_proxy… Handlers are immutable after
/// config load and shared by every event loop.
package protocol Handler: AnyObject, Sendable {
    func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult
}

/// Reason phrases (RFC 9110 §15) for status lines.
package enum HTTPStatus {
    /// The reason phrase Go uses for `code` (`net/http.StatusText`), or empty for unknown codes.
    package static func reason(_ code: Int) -> StaticString {
        switch code {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 102: return "Processing"
        case 103: return "Early Hints"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 203: return "Non-Authoritative Information"
        case 204: return "No Content"
        case 205: return "Reset Content"
        case 206: return "Partial Content"
        case 207: return "Multi-Status"
        case 208: return "Already Reported"
        case 226: return "IM Used"
        case 300: return "Multiple Choices"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 305: return "Use Proxy"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 402: return "Payment Required"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 407: return "Proxy Authentication Required"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 412: return "Precondition Failed"
        case 413: return "Request Entity Too Large"
        case 414: return "Request URI Too Long"
        case 415: return "Unsupported Media Type"
        case 416: return "Requested Range Not Satisfiable"
        case 417: return "Expectation Failed"
        case 418: return "I'm a teapot"
        case 421: return "Misdirected Request"
        case 422: return "Unprocessable Entity"
        case 423: return "Locked"
        case 424: return "Failed Dependency"
        case 425: return "Too Early"
        case 426: return "Upgrade Required"
        case 428: return "Precondition Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 451: return "Unavailable For Legal Reasons"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        case 506: return "Variant Also Negotiates"
        case 507: return "Insufficient Storage"
        case 508: return "Loop Detected"
        case 510: return "Not Extended"
        case 511: return "Network Authentication Required"
        default: return ""
        }
    }
}

import HTTPCore
import IOCore

/// What the driver does after a call into an `HTTP1Connection`.
///
/// The driver owns the socket; the connection owns the protocol. After every call the driver
/// writes whatever `output` holds (it may take several `write`s; it consumes what it wrote),
/// then:
package enum HTTP1Action: Equatable, Sendable {
    /// `output` is empty; keep reading and call `receive()` when bytes arrive.
    case readMore
    /// `output` has bytes to write; keep reading too.
    case flush
    /// Write `output`, but stop reading: a response is in progress (or too much output is
    /// pending). Call `resume()` once `output` has been completely written, and whenever the
    /// delegate's `http1ConnectionNeedsService` fires.
    case wait
    /// Write `output`, then close. To keep the peer from getting a reset before it has read
    /// the response while it still sends, shut down the write side and discard input for a
    /// short linger (Go's `closeWriteAndWait`: 500 ms) before closing.
    case flushAndClose
    /// Close now; there is nothing to write.
    case close
    /// The connection opened with the HTTP/2 prior-knowledge preface (RFC 9113 §3.4).
    /// Nothing was consumed: hand `input` to HTTP/2, or close if h2c is not enabled.
    case switchToHTTP2
}

/// Produces responses. The server's router; called on the connection's loop thread.
package protocol HTTP1Responder: AnyObject {
    /// Handles one request. `.done`/`.next` with nothing sent gets an empty response with the
    /// response's current status (Caddy answers unrouted requests with an empty 200);
    /// `.pending` means the handler finishes `response` later on this loop.
    func respond(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult
}

/// Events from a connection to the server that drives it.
package protocol HTTP1ConnectionDelegate: AnyObject {
    /// Something changed outside a call into the connection (an asynchronous handler wrote or
    /// finished its response, or started/resumed reading the body). Schedule a call to
    /// `resume()` — later in this loop iteration, NOT from inside this callback (it runs on
    /// the handler's stack, which may still use the request and response).
    func http1ConnectionNeedsService(_ connection: HTTP1Connection)
    /// A response finished: the access-log hook. Called before the request and response are
    /// reset for the next exchange; `bytesRead` is the body bytes the handler read.
    /// Not called for `OPTIONS *` or for rejections (Caddy does not log those either).
    func http1Connection(
        _ connection: HTTP1Connection, finished request: HTTPRequest, response: HTTPResponse, bytesRead: Int64)
}

/// One HTTP/1.x server connection as a sans-I/O state machine (RFC 9112).
///
/// It never touches a socket: the driver appends received bytes to `input` and calls
/// `receive()`; the connection parses heads, calls the responder, encodes responses into
/// `output`, and returns an `HTTP1Action`. Requests are answered strictly in order: the next
/// pipelined head is parsed only once the current response is finished, and every response
/// is appended to the same `output`, so one `write` can flush several.
///
/// Driver loop (one connection, one loop thread):
///
///     let conn = HTTP1Connection(input: inBuf, output: outBuf, configuration: cfg,
///                                dateCache: loop.dateCache, connectionInfo: info, responder: router)
///     conn.delegate = self
///     var action = conn.start()            // arm the first timer / read
///     loop {
///         flush outBuf (write, consume written bytes)
///         switch action {
///         case .readMore, .flush:  on readable: n = read(into: inBuf.writePointer…)
///                                  n > 0 → inBuf.commit(n); action = conn.receive()
///                                  n == 0 → action = conn.peerClosed()
///         case .wait:              when outBuf is drained or needsService fired → action = conn.resume()
///         case .flushAndClose:     when outBuf is drained → shutdown(SHUT_WR), linger, close
///         case .close:             close
///         case .switchToHTTP2:     hand inBuf to the HTTP/2 connection
///         }
///         if conn.timeout != armed { armed = conn.timeout; re-arm (or cancel) the timer }
///         on timer expiry: action = conn.timedOut()
///     }
///
/// The driver must keep the connection alive while `isHandlerPending` (the handler's
/// response refers to it) and must only append to `input` between calls. The connection
/// holds its responder strongly (a router is shared by many connections) and its delegate
/// weakly; a driver that is itself the responder must drop the connection once closed.
public final class HTTP1Connection {
    /// The explicit exchange state (see `HTTP1Connection+StateMachine.swift`).
    package enum State: Equatable, Sendable {
        /// Waiting for, or parsing, a request head.
        case head
        /// The responder has the request; its response is not finished.
        case handling
        /// The response is finished; the rest of the request body is discarded before the next
        /// head may be parsed.
        case draining
        /// The connection will close; nothing more is parsed.
        case closing
        /// Closed (after a closing action was returned). Every call returns `.close`.
        case closed
        /// Handed over to HTTP/2.
        case handedOff
    }

    /// Who consumes the current request body.
    enum BodyConsumer {
        /// Nobody yet; the bytes wait in `input`.
        case unclaimed
        /// A handler's reader (RFC 9110 §10.1.1: reading is what triggers 100 Continue).
        case reading(any RequestBodyReader, paused: Bool)
        /// The reader was told the body ended (or failed).
        case readerDone
        /// Nobody will read it: the connection discards it within `discardBudget`.
        case discarding
    }

    /// How the current response body is being written.
    enum ResponseMode: Equatable {
        case notStarted
        /// No body on the wire (HEAD, 1xx, 204, 304).
        case noBody
        /// Content-Length body; bytes still owed.
        case fixed(Int64)
        case chunked
        /// HTTP/1.0 body of unknown length, ended by closing (RFC 9112 §6.3 rule 8).
        case closeDelimited
        case finished
    }

    /// Bytes from the peer; the driver appends, the connection consumes.
    package let input: ByteBuffer
    /// Bytes for the peer; the connection appends, the driver writes and consumes.
    package let output: ByteBuffer
    /// The request being parsed or handled (reused).
    package let request = HTTPRequest()
    /// The response for `request` (reused); its sink is this connection.
    package private(set) var response: HTTPResponse!
    /// Receives service requests and access-log events.
    /// The driver; `unowned(unsafe)` because the driver owns this connection and is the
    /// responder too (kept alive by it), and a weak reference would put a side table on the
    /// driver and push every retain/release of it onto the slow path.
    package unowned(unsafe) var delegate: (any HTTP1ConnectionDelegate)?

    let limits: HTTP1Limits
    let timeouts: HTTP1Timeouts
    let dateCache: DateCache
    let responder: any HTTP1Responder
    let serverName: [UInt8]?

    package internal(set) var state: State = .head
    var parser = HTTP1Parser()
    var decoder = ChunkedDecoder()
    var trailerFields = HTTPFields()

    // The current exchange.
    var needsReset = false
    var keepAlive = true
    /// The current request asked to close the connection (`Connection: close`, or HTTP/1.0
    /// without keep-alive): the client sends nothing after it (RFC 9112 §9.6).
    var clientClosing = false
    var isHEAD = false
    var logExchange = true
    var expectContinuePending = false
    var bodyFraming: BodyFraming = .none
    var bodyRemaining: Int64 = 0
    var bodyDone = true
    var bodyBroken = false
    var consumer: BodyConsumer = .unclaimed
    var discardBudget: Int64 = 0
    var responseMode: ResponseMode = .notStarted
    var handlerHoldsResponse = false
    /// Flow control of a streaming handler (see `HTTP1Connection+Flow.swift`).
    var flow = HTTP1FlowState()
    /// A file body the driver sends after `output` (see `HTTP1Connection+File.swift`).
    package internal(set) var fileRegion: HTTP1FileRegion? = nil {
        didSet { hasPendingFile = fileRegion != nil }
    }
    /// True while a file region waits for the driver. Stored, in a `public` class: the
    /// driver reads it several times per request straight from the object (a `package`
    /// getter is an out-of-line call, with a retain and release of the connection around it).
    public private(set) var hasPendingFile = false
    /// Set by the driver on plain TCP: large file bodies may be left to it as a
    /// `fileRegion` for sendfile(2). Off on TLS (the bytes must pass through the cipher).
    package var zeroCopyFiles = false

    // The connection.
    /// Responses completed on this connection.
    package internal(set) var requestsServed = 0
    /// The peer closed its sending side.
    package internal(set) var peerEOF = false
    /// The last rejection sent (for tests and logs).
    package internal(set) var lastError: HTTP1Error? = nil
    var callDepth = 0
    var epoch: UInt64 = 0

    /// Creates a connection over the driver's buffers.
    package init(
        input: ByteBuffer, output: ByteBuffer, configuration: HTTP1Configuration = HTTP1Configuration(),
        dateCache: DateCache, connectionInfo: ConnectionInfo, responder: any HTTP1Responder
    ) {
        self.input = input
        self.output = output
        limits = configuration.limits
        timeouts = configuration.timeouts
        self.dateCache = dateCache
        self.responder = responder
        serverName = configuration.serverName.map { Array($0.utf8) }
        request.connection = connectionInfo
        response = HTTPResponse(sink: self)
    }

    /// True while a handler holds an unfinished response (it returned `.pending`, or sent a
    /// head it has not finished). The response refers to this connection unowned, so the
    /// driver must keep the connection object alive until this is false — even after closing
    /// the socket. Handlers must finish every response they keep, also after a body failure or
    /// a close (calls on a closed connection are ignored).
    package var isHandlerPending: Bool { handlerHoldsResponse && !response.finished }

    /// The action before any input (a fresh connection waits for its first request).
    package func start() -> HTTP1Action { receive() }

    /// New bytes were appended to `input`.
    package func receive() -> HTTP1Action {
        if state == .closed { return .close }
        if state == .handedOff { return .switchToHTTP2 }
        return run()
    }

    /// Continue after `.wait` (output drained) or `http1ConnectionNeedsService`.
    package func resume() -> HTTP1Action { receive() }

    /// The peer closed its side (read returned 0). Complete requests already in `input` are
    /// still answered; a partial head is dropped silently (like Go).
    package func peerClosed() -> HTTP1Action {
        if state == .closed { return .close }
        callDepth += 1
        defer { callDepth -= 1 }
        peerEOF = true
        onPeerClosed()
        process()
        return nextAction()
    }

    /// Which timer should be armed now, or nil for none. Re-arm when it changes (`!=`).
    package var timeout: HTTP1Timeout? {
        switch state {
        case .head:
            if requestsServed > 0 && !parser.hasConsumed && input.isEmpty {
                return HTTP1Timeout(kind: .idle, duration: timeouts.idle, epoch: epoch)
            }
            return HTTP1Timeout(kind: .readHeader, duration: timeouts.readHeader, epoch: epoch)
        case .handling:
            guard !bodyDone, !bodyBroken, !peerEOF else { return nil }
            switch consumer {
            case .reading(_, let paused) where !paused:
                return HTTP1Timeout(kind: .readBody, duration: timeouts.readBody, epoch: epoch)
            case .discarding where keepAlive:
                return HTTP1Timeout(kind: .readBody, duration: timeouts.readBody, epoch: epoch)
            default:
                return nil
            }
        case .draining:
            return HTTP1Timeout(kind: .readBody, duration: timeouts.readBody, epoch: epoch)
        case .closing, .closed, .handedOff:
            return nil
        }
    }

    /// The timer from `timeout` fired.
    ///
    /// - idle: close silently (nothing was sent by the peer);
    /// - read-header: `408 Request Timeout` and close if part of a head arrived (RFC 9110
    ///   §15.5.9), else close silently (a browser's pre-connected socket);
    /// - read-body: the reader fails with `.timedOut`; if no response was started the client
    ///   gets 408; the connection closes after the response.
    package func timedOut() -> HTTP1Action {
        guard let t = timeout else { return state == .closed ? .close : nextAction() }
        callDepth += 1
        defer { callDepth -= 1 }
        onTimeout(t.kind)
        return nextAction()
    }

    @inline(__always)
    func run() -> HTTP1Action {
        callDepth += 1
        defer { callDepth -= 1 }
        process()
        return nextAction()
    }

    /// Asks the driver for a `resume()` when a change happened outside any call into us.
    @inline(__always)
    func notifyIfOutside() {
        if callDepth == 0 { delegate?.http1ConnectionNeedsService(self) }
    }

    /// What the driver should do now, given the state.
    func nextAction() -> HTTP1Action {
        switch state {
        case .closed:
            return .close
        case .handedOff:
            return .switchToHTTP2
        case .closing:
            state = .closed
            return output.isEmpty ? .close : .flushAndClose
        case .head, .draining:
            if peerEOF {
                state = .closed
                return output.isEmpty ? .close : .flushAndClose
            }
            if output.readableBytes >= limits.maxPendingOutput { return .wait }
            return output.isEmpty ? .readMore : .flush
        case .handling:
            if !peerEOF && wantsInputWhileHandling() { return output.isEmpty ? .readMore : .flush }
            return .wait
        }
    }

    /// Whether to keep reading while a handler is busy: yes when it reads (or we discard) the
    /// body, otherwise only until `maxBufferedInput` bytes are buffered.
    private func wantsInputWhileHandling() -> Bool {
        if !bodyDone && !bodyBroken {
            switch consumer {
            case .reading(_, let paused) where !paused: return true
            case .discarding where keepAlive: return true
            default: break
            }
        }
        return input.readableBytes < limits.maxBufferedInput
    }

    /// The Connection field for the current response (RFC 9112 §9.3, §9.6). HTTP/1.0 gets
    /// `keep-alive` echoed when it persists and nothing when it closes (Go does the same).
    var connectionField: ConnectionField {
        if !keepAlive { return request.version == .http1_1 ? .close : .none }
        return request.version == .http1_0 ? .keepAlive : .none
    }

    /// Writes a rejection and marks the connection for closing.
    func reject(_ error: HTTP1Error) {
        lastError = error
        keepAlive = false
        let date = dateCache.current()
        if let serverName {
            serverName.withUnsafeBytes { HTTP1Encoder.writeError(into: output, error, server: $0, date: date) }
        } else {
            HTTP1Encoder.writeError(into: output, error, server: nil, date: date)
        }
        state = .closing
    }
}

internal import CNGHTTP2
import HTTPCore
import IOCore

/// What the driver does after a call into an `HTTP2Connection` (the same contract as
/// `HTTP1Action`, minus the hand-off).
///
/// After every call the driver writes whatever `output` holds (it may take several `write`s;
/// it consumes what it wrote), then:
package enum HTTP2Action: Equatable, Sendable {
    /// `output` is empty; keep reading and call `receive()` when bytes arrive.
    case readMore
    /// `output` has bytes to write; keep reading too.
    case flush
    /// Write `output` but stop reading: more than `HTTP2Limits.maxPendingOutput` is pending
    /// (the peer is not reading). Call `resume()` once `output` has been completely written.
    case wait
    /// Write `output` (it ends with a GOAWAY, unless the peer is gone), then close, with the
    /// same short linger as HTTP/1 so the peer reads the GOAWAY before a reset.
    case flushAndClose
    /// Close now; there is nothing to write.
    case close
}

/// Produces responses; the server's router. Same shape as `HTTP1Responder`, so one object can
/// serve both protocols.
package protocol HTTP2Responder: AnyObject {
    /// Handles one request. `.done`/`.next` with nothing sent gets an empty response with the
    /// response's current status; `.pending` means the handler finishes `response` later on
    /// this loop.
    func respond(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult
}

/// Events from a connection to the server that drives it (same shape as
/// `HTTP1ConnectionDelegate`).
package protocol HTTP2ConnectionDelegate: AnyObject {
    /// Something changed outside a call into the connection (an asynchronous handler wrote or
    /// finished a response, started or resumed reading a body, asked for a writability
    /// notification). Schedule a call to `resume()` — later in this loop iteration, NOT from
    /// inside this callback.
    func http2ConnectionNeedsService(_ connection: HTTP2Connection)
    /// A stream finished (its response is complete on the wire, or the stream was reset, and
    /// the handler let go of it): the access-log hook. Called before the stream's request and
    /// response are recycled. Not called for `OPTIONS *`, for streams answered without a
    /// handler (431), or for streams reset before their handler ran.
    func http2Connection(
        _ connection: HTTP2Connection, finished request: HTTPRequest, response: HTTPResponse, bytesRead: Int64)
}

/// One HTTP/2 server connection (RFC 9113) as a sans-I/O state machine around an nghttp2
/// server session.
///
/// It never touches a socket: the driver appends received bytes (TLS plaintext, or the
/// cleartext stream for h2c) to `input` and calls `receive()`; the connection checks every
/// frame header against its abuse limits (`HTTP2FloodGuard`), feeds nghttp2, maps each stream
/// onto a pooled `HTTPRequest`/`HTTPResponse` pair, calls the responder, and lets nghttp2
/// serialise frames into `output`. Streams are multiplexed: many handlers may be in flight.
///
/// Driver loop (one connection, one loop thread):
///
///     let conn = HTTP2Connection(input: inBuf, output: outBuf, configuration: cfg,
///                                dateCache: loop.dateCache, connectionInfo: info, responder: router)
///     conn.delegate = self
///     var action = conn.start()      // queues our SETTINGS; serves bytes already in `inBuf`
///     loop {
///         flush outBuf (TLS: encrypt outBuf into the socket's buffer first)
///         switch action {
///         case .readMore, .flush:  on readable: read (TLS: decrypt) into inBuf
///                                  n > 0 → action = conn.receive();  EOF → action = conn.peerClosed()
///         case .wait:              when outBuf is drained → action = conn.resume()
///         case .flushAndClose:     when outBuf is drained → shutdown(SHUT_WR), linger, close
///         case .close:             close
///         }
///         needsService fired → action = conn.resume() (later in the same iteration)
///         if conn.timeout != armed { re-arm }; on expiry: action = conn.timedOut()
///         on SIGTERM / reload: action = conn.beginGracefulShutdown()
///     }
///
/// h2c prior knowledge: when `HTTP1Connection` returns `.switchToHTTP2` it has consumed
/// nothing, so the driver creates an `HTTP2Connection` over the same `input`/`output` and
/// calls `start()`: the preface is parsed from `input` like any other bytes. Over TLS the
/// driver does the same once ALPN selected `h2`.
///
/// The driver must keep the connection alive while `isHandlerPending` (responses refer to
/// their streams unowned) and only append to `input` between calls. The connection holds its
/// responder strongly and its delegate weakly.
package final class HTTP2Connection {
    /// The connection state (see `HTTP2Connection+StateMachine.swift`).
    package enum State: Equatable, Sendable {
        /// Serving streams.
        case open
        /// `beginGracefulShutdown()` sent GOAWAY(2^31-1) and a PING (RFC 9113 §6.8): streams
        /// the client sent before seeing it are still accepted, until the PING comes back or
        /// nothing is in flight.
        case shutdownNotified
        /// The final GOAWAY with the last processed stream went out; in-flight streams
        /// finish, then the connection closes.
        case draining
        /// Ending: a GOAWAY with an error code (or NO_ERROR on idle) is queued, or the peer is
        /// gone. The next action is `.flushAndClose` or `.close`.
        case closing
        /// Closed. Every call returns `.close`.
        case closed
    }

    /// Bytes from the peer; the driver appends, the connection consumes all of them.
    package let input: ByteBuffer
    /// Bytes for the peer; the connection appends, the driver writes and consumes.
    package let output: ByteBuffer
    /// Receives service requests and access-log events.
    /// The driver (see HTTP1Connection.delegate for why this is `unowned(unsafe)`).
    package unowned(unsafe) var delegate: (any HTTP2ConnectionDelegate)?

    let settings: HTTP2Settings
    let limits: HTTP2Limits
    let timeouts: HTTP2Timeouts
    let dateCache: DateCache
    let responder: any HTTP2Responder
    let serverName: [UInt8]?
    /// Transport facts copied into every request (set the TLS details before the first
    /// stream; over TLS the driver creates the connection after ALPN chose `h2`).
    package var connectionInfo: ConnectionInfo
    let session: NGHTTP2Session

    package internal(set) var state: State = .open
    var scanner = HTTP2FrameScanner()
    var floodGuard: HTTP2FloodGuard

    // Streams.
    /// Streams not in the pool (strong references; nghttp2 holds them unretained).
    var live: [HTTP2Stream] = []
    /// Recycled streams.
    var pool: [HTTP2Stream] = []
    /// Heads complete, waiting for a handler slot (may hold stale entries; see dispatch).
    var readyQueue: [HTTP2Stream] = []
    /// Streams with body to deliver or a writability notification due.
    var serviceQueue: [HTTP2Stream] = []
    /// Streams in `.queued` (readyQueue may also hold stale entries).
    var queuedStreams = 0
    /// Handlers holding an unfinished response (reset streams included).
    package internal(set) var handlersInFlight = 0

    // The connection.
    /// Streams whose exchange completed (for tests and metrics).
    package internal(set) var streamsServed = 0
    /// Stream objects ever allocated (a steady-state test checks it stops growing).
    package internal(set) var streamsAllocated = 0
    /// The last abuse or protocol violation that ended the connection.
    package internal(set) var lastViolation: HTTP2Violation? = nil
    /// The last GOAWAY sent.
    package internal(set) var sentGoAway: HTTP2GoAway? = nil
    /// The peer closed its sending side.
    package internal(set) var peerEOF = false
    /// A violation found inside an nghttp2 callback, acted on when nghttp2 returns.
    var pendingViolation: HTTP2Violation? = nil
    /// Send everything nghttp2 has (the final GOAWAY), ignoring `maxPendingOutput`.
    var flushAll = false
    var callDepth = 0
    var epoch: UInt64 = 0
    var now: UInt64 = 0
    /// The monotonic clock in nanoseconds; tests replace it to step through rate windows.
    package var clock: () -> UInt64 = { Clock.monotonicNanos() }

    /// Creates a connection over the driver's buffers and queues the server preface (SETTINGS
    /// and the connection window update, RFC 9113 §3.4). `input` may already hold bytes
    /// (h2c: the client preface that HTTP/1 detected).
    package init(
        input: ByteBuffer, output: ByteBuffer, configuration: HTTP2Configuration = HTTP2Configuration(),
        dateCache: DateCache, connectionInfo: ConnectionInfo, responder: any HTTP2Responder
    ) {
        self.input = input
        self.output = output
        settings = configuration.settings
        limits = configuration.limits
        timeouts = configuration.timeouts
        self.dateCache = dateCache
        self.responder = responder
        serverName = configuration.serverName.map { Array($0.utf8) }
        self.connectionInfo = connectionInfo
        floodGuard = HTTP2FloodGuard(limits: configuration.limits)
        session = NGHTTP2Session.server(limits: configuration.limits)
        let reserve = min(settings.maxConcurrentStreams, 256)
        live.reserveCapacity(reserve)
        pool.reserveCapacity(limits.streamPoolSize)
        readyQueue.reserveCapacity(reserve)
        serviceQueue.reserveCapacity(reserve)
        session.setUserData(Unmanaged.passUnretained(self).toOpaque())
        submitPreface()
    }

    /// True while a handler holds an unfinished response (its stream refers to this
    /// connection unowned): keep the connection object alive until this is false, also after
    /// closing the socket.
    package var isHandlerPending: Bool { handlersInFlight > 0 }

    /// Streams not yet recycled (open, queued, or finishing).
    package var activeStreams: Int { live.count }

    /// Idle stream objects held for reuse.
    package var pooledStreams: Int { pool.count }

    /// Starts the connection: sends our preface and serves any bytes already in `input`.
    package func start() -> HTTP2Action { receive() }

    /// New bytes were appended to `input`.
    package func receive() -> HTTP2Action {
        if state == .closed { return .close }
        return run()
    }

    /// Continue after `.wait` (output drained) or `http2ConnectionNeedsService`.
    package func resume() -> HTTP2Action { receive() }

    /// The peer closed its side (read returned 0): readers fail, the connection closes after
    /// what is already in `output`.
    package func peerClosed() -> HTTP2Action {
        if state == .closed { return .close }
        callDepth += 1
        defer { callDepth -= 1 }
        peerEOF = true
        input.clear()
        state = .closing
        return nextAction()
    }

    /// The driver closed the socket (write error, timeout, end of the shutdown grace period):
    /// handlers still holding a response get `responseAborted()`, readers fail with
    /// `.connectionClosed`, and later writes are ignored.
    package func transportClosed() {
        if state == .closed { return }
        callDepth += 1
        defer { callDepth -= 1 }
        state = .closing
        _ = nextAction()
    }

    /// Starts a graceful shutdown (RFC 9113 §6.8): GOAWAY with the maximum stream id and a
    /// PING; when the PING returns (one round trip, so requests already in flight arrived) or
    /// nothing is in flight, the final GOAWAY carries the last processed stream; the
    /// connection closes once those streams finish. The server bounds the whole drain with its
    /// grace period.
    package func beginGracefulShutdown() -> HTTP2Action {
        if state == .closed { return .close }
        callDepth += 1
        defer { callDepth -= 1 }
        now = clock()
        requestGracefulShutdown()
        settle()
        return nextAction()
    }

    /// Which timer should be armed now, or nil for none. Re-arm when it changes (`!=`).
    package var timeout: HTTP2Timeout? {
        switch state {
        case .closing, .closed:
            return nil
        case .open, .shutdownNotified, .draining:
            if !scanner.sawPreface { return HTTP2Timeout(kind: .preface, duration: timeouts.preface, epoch: 0) }
            if live.isEmpty { return HTTP2Timeout(kind: .idle, duration: timeouts.idle, epoch: epoch) }
            if handlersInFlight > 0 {
                for s in live where s.awaitsBody {
                    return HTTP2Timeout(kind: .readBody, duration: timeouts.readBody, epoch: epoch)
                }
            }
            return nil
        }
    }

    /// The timer from `timeout` fired: no preface → close silently; idle → GOAWAY NO_ERROR
    /// and close (Go does the same on its idle timeout); read-body → the waiting readers fail
    /// with `.timedOut` and their streams get RST_STREAM CANCEL (the connection stays).
    package func timedOut() -> HTTP2Action {
        guard let t = timeout else { return state == .closed ? .close : nextAction() }
        callDepth += 1
        defer { callDepth -= 1 }
        now = clock()
        switch t.kind {
        case .preface:
            state = .closing
        case .idle:
            goAway(.noError)
            settle()
        case .readBody:
            for s in live where s.awaitsBody {
                s.failReader(.timedOut)
                resetStream(s, .cancel)
            }
            epoch &+= 1
            settle()
        }
        return nextAction()
    }

    @inline(__always)
    func run() -> HTTP2Action {
        callDepth += 1
        defer { callDepth -= 1 }
        now = clock()
        process()
        return nextAction()
    }

    /// Asks the driver for a `resume()` when a change happened outside any call into us.
    @inline(__always)
    func noteOutsideChange() {
        if callDepth == 0 { delegate?.http2ConnectionNeedsService(self) }
    }
}

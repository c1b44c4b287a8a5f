import HTTPCore
import IOCore

/// Per-exchange flow-control state (`HTTP1Connection.flow`).
struct HTTP1FlowState {
    /// The handler watching the transport (reverse_proxy), if any. Strong, not weak: a weak
    /// reference gives the observer a side table, which sends every retain/release of it down
    /// the slow path. The cycle (the observer holds this connection as its flow control) is
    /// broken whenever the state is reset: `setFlowObserver(nil)`, the end of the exchange,
    /// an abort, or the transport closing.
    var observer: (any ResponseFlowObserver)?
    /// `isResponseWritable` returned false; `responseWritable()` is owed.
    var blocked = false
}

/// The driver's side of a protocol hand-over after `101 Switching Protocols`.
package protocol HTTP1TransportDelegate: AnyObject {
    /// Gives the socket to `receiver` (with the buffered input and unsent output) and forgets
    /// the connection. Returns false when the socket cannot be handed over (already closing).
    func http1Connection(_ connection: HTTP1Connection, handOverTo receiver: any UpgradeReceiver) -> Bool
}

/// Flow control for streaming handlers (see `HTTPCore/ResponseFlow.swift`), and the hooks the
/// driver calls so the connection can tell them about the transport:
///
/// - `transportDrained()` after every write that left `output` empty;
/// - `transportClosed()` when the socket is closed (error, timeout, shutdown);
/// - `peerClosedAbortingHandler()` instead of `peerClosed()` on EOF: like Go's server, a
///   client that closes while its request is being handled cancels the handler.
extension HTTP1Connection: ResponseFlowControl {
    /// False once `output` holds `maxPendingOutput` bytes or more.
    package var isResponseWritable: Bool {
        if output.readableBytes < limits.maxPendingOutput { return true }
        flow.blocked = true
        return false
    }

    package func setFlowObserver(_ observer: (any ResponseFlowObserver)?, for response: HTTPResponse) {
        guard response === self.response else { return }
        flow.observer = observer
        if observer == nil { flow.blocked = false }
    }

    /// The head went out but the body cannot be completed: close the connection after what is
    /// buffered, without a last chunk (RFC 9112 §7.1) — a client of a Content-Length body sees
    /// fewer bytes than announced (§6.3), a chunked one sees no terminating chunk (§8).
    package func abortStreamedResponse(_ response: HTTPResponse) {
        guard state == .handling, response === self.response else { return }
        flow = HTTP1FlowState()
        keepAlive = false
        responseMode = .finished
        if logExchange {
            delegate?.http1Connection(self, finished: request, response: response, bytesRead: request.bodyBytesRead)
        }
        if case .reading = consumer { consumer = .readerDone }
        state = .closing
        notifyIfOutside()
    }

    /// Writes the 101 head and hands the socket to `receiver` through the driver.
    ///
    /// RFC 9110 §15.2.2: after the 101 the connection speaks the protocol in `Upgrade`; the
    /// request must have been fully received first (a request with an unread body is refused).
    /// The head keeps the handler's `Connection` and `Upgrade` fields (the encoder for ordinary
    /// responses owns Connection and would drop them).
    package func switchProtocols(_ response: HTTPResponse, to receiver: any UpgradeReceiver) -> Bool {
        guard state == .handling, response === self.response, responseMode == .notStarted, bodyDone, !bodyBroken,
            let transport = delegate as? any HTTP1TransportDelegate
        else { return false }
        writeSwitchingProtocolsHead(response)
        responseMode = .finished
        flow = HTTP1FlowState()
        if logExchange {
            delegate?.http1Connection(self, finished: request, response: response, bytesRead: request.bodyBytesRead)
        }
        requestsServed += 1
        state = .closed
        return transport.http1Connection(self, handOverTo: receiver)
    }

    private func writeSwitchingProtocolsHead(_ response: HTTPResponse) {
        let fields = response.fields
        var bound = 128 + (serverName?.count ?? 0)
        for e in fields.entries { bound &+= Int(e.nameLength) &+ Int(e.valueLength) &+ 4 }
        let date = dateCache.current()
        output.write(reserving: bound) { w in
            w.put("HTTP/1.1 101 Switching Protocols\r\n")
            var hasServer = false, hasDate = false
            fields.arena.withUnsafeBytes { ab in
                guard let base = ab.baseAddress else { return }
                for e in fields.entries {
                    if e.token == .server { hasServer = true }
                    if e.token == .date { hasDate = true }
                    let name = UnsafeRawBufferPointer(start: base + Int(e.nameStart), count: Int(e.nameLength))
                    if name.isEmpty || name.contains(where: { !ByteClass.isTchar($0) }) { continue }
                    w.put(name)
                    w.put(": ")
                    let v = UnsafeRawBufferPointer(start: base + Int(e.valueStart), count: Int(e.valueLength))
                    for b in v { w.put(byte: b == 0x0D || b == 0x0A ? 0x20 : b) }
                    w.put("\r\n")
                }
            }
            if !hasServer, let serverName {
                w.put("Server: ")
                serverName.withUnsafeBytes { w.put($0) }
                w.put("\r\n")
            }
            if !hasDate {
                w.put("Date: ")
                w.put(date)
                w.put("\r\n")
            }
            w.put("\r\n")
        }
    }

    // MARK: Driver hooks

    /// True while a handler's reader streams the request body (the driver reads in larger
    /// pieces then: an upload through `reverse_proxy` costs a syscall per read).
    package var isStreamingRequestBody: Bool {
        if !bodyDone, case .reading = consumer { return true }
        return false
    }

    /// The driver wrote everything in `output`.
    @inline(__always)
    package func transportDrained() {
        guard flow.blocked else { return }
        flow.blocked = false
        flow.observer?.responseWritable()
    }

    /// The driver closed the socket. A handler still holding the response is told (so it can
    /// cancel its upstream work), a body reader fails, and later writes are ignored.
    package func transportClosed() {
        guard state == .handling else {
            if state != .handedOff { state = .closed }
            return
        }
        state = .closed
        let observer = flow.observer
        flow = HTTP1FlowState()
        if !bodyDone && !bodyBroken, case .reading(let reader, _) = consumer {
            bodyBroken = true
            consumer = .readerDone
            reader.requestBodyFailed(.connectionClosed)
        }
        observer?.responseAborted()
    }

    /// `peerClosed()`, then — if a handler still holds the response and watches the
    /// transport — tells it the client went away (Go cancels the request's context when its
    /// background read sees EOF; Caddy's proxy then cancels the upstream request).
    package func peerClosedAbortingHandler() -> HTTP1Action {
        let action = peerClosed()
        if state == .handling, let observer = flow.observer {
            state = .closed
            flow = HTTP1FlowState()
            observer.responseAborted()
            return .close
        }
        return action
    }
}

import HTTPCore
import IOCore

/// Reuse of a whole connection object for the next accepted socket (the driver's per-loop
/// pool: a `Connection: close` exchange then allocates nothing for its request, response,
/// parser and buffers).
extension HTTP1Connection {
    /// True when the connection can be reset for another socket: closed, not inside one of its
    /// own calls, no handler holding the response, not handed over to HTTP/2 or a tunnel.
    package var isRecyclable: Bool {
        (state == .closed || state == .closing) && callDepth == 0 && !isHandlerPending
    }

    /// The peer will send nothing more that this connection must read: it ended its side
    /// (EOF), or its last request asked to close (RFC 9112 §9.6: a client that sends `close`
    /// MUST NOT send further requests) and was read to its end, nothing left over. Then a
    /// closing connection needs no linger (shutdown, then discarding input until the peer's
    /// FIN) before close(2): no unread byte can make the kernel send a reset (nginx closes at
    /// once in that case too; its lingering close is only for unread input).
    package var peerFinishedSending: Bool {
        if peerEOF { return true }
        return clientClosing && bodyDone && !bodyBroken && input.isEmpty && lastError == nil
    }

    /// Forgets everything about the previous socket, keeping storage: the state of a
    /// connection just created (the driver sets `request.connection` for the next socket). References the old exchange held (a
    /// file region's descriptor, a body reader, a flow observer, a response decorator, the
    /// error router, request variables) are dropped here, so a pooled object pins nothing.
    /// Call only when `isRecyclable`.
    package func recycle() {
        precondition(isRecyclable, "recycling a connection in use")
        resetExchange()
        response.errorRouter = nil
        request.connection = ConnectionInfo()
        input.clear()
        output.clear()
        state = .head
        fileRegion = nil
        requestsServed = 0
        peerEOF = false
        lastError = nil
    }
}

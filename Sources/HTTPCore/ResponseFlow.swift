/// Flow control for handlers that stream a response whose bytes come from somewhere else
/// (`reverse_proxy`): knowing when the client stops taking bytes, when it takes them again,
/// when it went away, and handing the connection over after `101 Switching Protocols`.
///
/// A protocol sink that can do this conforms to `ResponseFlowControl`; handlers find it with
/// `response.flowControl`. A sink that does not conform (tests, future protocols) behaves as
/// one that is always writable, never reports an abort, and cannot switch protocols — so a
/// streaming handler still works, only without back-pressure.
///
/// Rules (all calls on the connection's event loop):
/// - `isResponseWritable` is false once the protocol buffers more than its high-water mark of
///   unsent bytes. A handler that sees false stops producing and waits for
///   `responseWritable()`, which fires once, when the buffered bytes have been written.
/// - `responseAborted()` fires when the client connection closed or failed while the handler
///   held the response (RFC 9110 §9.1 gives the client no way to cancel but closing). The
///   handler then releases what it holds and calls `finish()` (ignored on the wire) so the
///   protocol can free the exchange.
/// - Observer callbacks never run from inside a call the handler made into the response.
@usableFromInline
package protocol ResponseFlowObserver: AnyObject {
    /// The bytes buffered when `isResponseWritable` last returned false have been written.
    func responseWritable()
    /// The client connection is gone; stop and finish the response (nothing more is sent).
    func responseAborted()
}

/// Takes over a client connection after `101 Switching Protocols` (RFC 9110 §15.2.2,
/// §7.8): from then on the bytes are not HTTP and go both ways unchanged (WebSocket, RFC 6455).
@usableFromInline
package protocol UpgradeReceiver: AnyObject {
    /// Ownership of `fd` passes to the receiver (it must close it). `fromClient` holds bytes
    /// the client sent after its request head; `toClient` holds bytes of the 101 response
    /// not yet written. Both are valid only during the call. The fd is non-blocking and no
    /// longer registered with the event loop. `tls` is the connection's TLS session (a
    /// `TLSConnection`, typed loosely because HTTPCore does not know TLS) when the client
    /// speaks HTTPS: then `fromClient`/`toClient` are plaintext, and the session's own
    /// buffers hold ciphertext still to decrypt or to write.
    func takeOver(fd: Int32, tls: AnyObject?, fromClient: UnsafeRawBufferPointer, toClient: UnsafeRawBufferPointer)
}

/// The flow-control side of a protocol sink (HTTP/1 implements it; see the file comment).
package protocol ResponseFlowControl: AnyObject {
    /// False while more unsent bytes are buffered than the protocol wants to hold.
    var isResponseWritable: Bool { get }
    /// Registers (or clears, with nil) the observer of `response`'s transport. Cleared by the
    /// protocol when the exchange ends.
    func setFlowObserver(_ observer: (any ResponseFlowObserver)?, for response: HTTPResponse)
    /// Ends a response whose head was sent but whose body cannot be completed (the upstream
    /// died mid-body): the connection closes without the body's proper end (no last chunk),
    /// so the client sees the message as incomplete (RFC 9112 §8). Call `finish()` after it
    /// to release the response.
    func abortStreamedResponse(_ response: HTTPResponse)
    /// Sends `response` as a `101 Switching Protocols` head (its fields as set, including
    /// `Connection: Upgrade` and `Upgrade`) and hands the connection to `receiver` once the
    /// head is queued. Returns false when the connection cannot be handed over (the head is
    /// then not sent). The handler must not touch `response` after a true return.
    func switchProtocols(_ response: HTTPResponse, to receiver: any UpgradeReceiver) -> Bool
}

extension HTTPResponse {
    /// The protocol's flow control, or nil for sinks without it (treat as always writable).
    /// Found once per response object (the protocol sink never changes): a dynamic cast is a
    /// conformance lookup, too much for every proxied request.
    package var flowControl: (any ResponseFlowControl)? {
        if !flowControlResolved {
            flowControlResolved = true
            cachedFlowControl = protocolSink as? any ResponseFlowControl
        }
        return cachedFlowControl
    }
}

extension HTTPFields {
    /// Asks the protocol not to add its own `Server` field: Caddy's `reverse_proxy` deletes
    /// the server's `Server` header, so the client sees the upstream's or none
    /// (caddy-behavior §0.6). Encoded as a `Server` token with an empty name, which every
    /// encoder treats as "the handler set Server" and skips when writing (no empty names go
    /// on the wire).
    package mutating func suppressServerField() {
        append(name: UnsafeRawBufferPointer(start: nil, count: 0), value: UnsafeRawBufferPointer(start: nil, count: 0),
               token: .server)
    }
}

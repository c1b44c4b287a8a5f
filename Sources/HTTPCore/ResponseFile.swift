#if canImport(Glibc)
import Glibc
#endif
import IOCore

extension ResponseSink {
    /// Sinks without a zero-copy path (HTTP/2 streams, `encode`'s compressor, tests) decline;
    /// the response then reads the file in chunks (`FileBodyPump`).
    package func sendFileRegion(_ response: HTTPResponse, file: SharedFile, offset: Int64, count: Int64) -> Bool {
        false
    }
}

/// Streams a region of a file into a response whose sink has no zero-copy path (TLS,
/// HTTP/2, `encode`): pread(2) in 64 KiB chunks, written with `HTTPResponse.write` while the
/// protocol reports itself writable (`ResponseFlowControl`), resumed by `responseWritable()`.
/// At most one chunk beyond the protocol's high-water mark is buffered, so a 100 MiB file
/// costs the same memory as a 100 KiB one.
///
/// Regions of at most `inlineLimit` bytes are read into the response's scratch buffer and sent
/// as a complete body (no head/body split, no allocation once the scratch buffer has grown).
///
/// If the file shrinks under us (a read returns less than promised), a response whose head
/// is not sent yet is aborted (the connection closes with no answer: the client retries);
/// one whose head is out ends like a failed upstream body (`abortStreamedResponse`, RFC 9112
/// §8: the client sees an incomplete message), never with bytes that contradict its
/// Content-Length.
package final class FileBodyPump: ResponseFlowObserver {
    /// Bytes read per pread(2).
    package static let chunkSize = 64 * 1024
    /// Regions up to this size are sent as one complete body from the scratch buffer.
    package static let inlineLimit = 16 * 1024

    private let file: SharedFile
    private var offset: Int64
    private var remaining: Int64
    private unowned(unsafe) let response: HTTPResponse
    private let flow: (any ResponseFlowControl)?
    private let buffer: UnsafeMutableRawPointer
    /// The pump keeps itself alive while it owns the response (observers are held weakly).
    private var keepAlive: FileBodyPump?

    private init(_ response: HTTPResponse, file: SharedFile, offset: Int64, count: Int64) {
        self.response = response
        self.file = file
        self.offset = offset
        self.remaining = count
        self.flow = response.flowControl
        buffer = .allocate(byteCount: FileBodyPump.chunkSize, alignment: 16)
    }

    deinit {
        buffer.deallocate()
    }

    /// Sends `count` bytes of `file` from `offset` as `response`'s body.
    package static func start(_ response: HTTPResponse, file: SharedFile, offset: Int64, count: Int64) -> HandlerResult {
        if count <= Int64(inlineLimit) {
            let s = response.scratch
            s.clear()
            let n = Int(count)
            s.reserveWritable(n)
            let got = file.readFully(into: s.writePointer, count: n, at: offset)
            if got < n {
                s.clear()
                response.abort()
                return .done
            }
            s.commit(n)
            response.send(body: s.readable)
            s.clear()
            return .done
        }
        let pump = FileBodyPump(response, file: file, offset: offset, count: count)
        response.sendHead(contentLength: count)
        pump.keepAlive = pump
        pump.flow?.setFlowObserver(pump, for: response)
        pump.run()
        return pump.keepAlive == nil ? .done : .pending
    }

    /// Writes chunks until the region is sent or the protocol stops taking bytes.
    private func run() {
        while remaining > 0 {
            if let flow, !flow.isResponseWritable { return }
            let want = Int(min(remaining, Int64(FileBodyPump.chunkSize)))
            let n = file.read(into: buffer, count: want, at: offset)
            if n <= 0 {
                flow?.abortStreamedResponse(response)
                end()
                return
            }
            offset += Int64(n)
            remaining -= Int64(n)
            response.write(UnsafeRawBufferPointer(start: buffer, count: n))
        }
        end()
    }

    private func end() {
        remaining = 0
        flow?.setFlowObserver(nil, for: response)
        if !response.finished { response.finish() }
        keepAlive = nil
    }

    package func responseWritable() {
        if keepAlive != nil { run() }
    }

    package func responseAborted() {
        if keepAlive != nil { end() }
    }
}

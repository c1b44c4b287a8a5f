import HTTPCore
import IOCore

/// A file body waiting to be sent after the bytes in `output`: the driver sends it with
/// sendfile(2) and reports progress with `fileRegionAdvanced(by:)`.
package struct HTTP1FileRegion {
    /// The open file (kept open until the region is sent or the connection is gone).
    package let file: SharedFile
    /// Next byte of the file to send.
    package internal(set) var offset: Int64
    /// Bytes still to send.
    package internal(set) var remaining: Int64
}

/// File bodies (file_server): the connection is a `ResponseSink` with a file-region path.
///
/// - Up to `inlineFileLimit` bytes are read with pread(2) straight into `output` behind the
///   head: one write(2) carries the whole response (with TCP_NODELAY, two writes would be two
///   segments), and no cached copy of the file is kept anywhere.
/// - Larger bodies on plain TCP (`zeroCopyFiles`) become a `fileRegion`: the head goes into
///   `output`, the driver writes it and then sends the region with sendfile(2) from the page
///   cache, as far as the socket takes it (EPOLLOUT backpressure, the write timeout applies).
///   The exchange completes (access log, next pipelined request) only once the last byte is
///   out, so pipelined responses can never overtake the file.
/// - Otherwise (TLS) the sink declines and the response streams the file in chunks.
extension HTTP1Connection {
    /// Largest body copied into `output` rather than sent with sendfile(2).
    package static let inlineFileLimit: Int64 = 32 * 1024


    package func sendFileRegion(_ response: HTTPResponse, file: SharedFile, offset: Int64, count: Int64) -> Bool {
        guard accepts(response), responseMode == .notStarted, !isHEAD, count > 0,
            HTTP1Connection.bodyAllowed(response.status)
        else { return false }
        let inline = count <= HTTP1Connection.inlineFileLimit
        if !inline && !zeroCopyFiles { return false }
        let status = response.status
        prepareHead(response, status)
        if inline {
            let n = Int(count)
            writeHead(response, status, framing: .contentLength(count), extra: n)
            output.reserveWritable(n)
            let got = file.readFully(into: output.writePointer, count: n, at: offset)
            if got < n {
                // The file shrank after it was measured: send what there is and close, so the
                // client sees a body shorter than its Content-Length (RFC 9112 §6.3), never
                // bytes of the next response in its place.
                keepAlive = false
            }
            output.commit(got)
            responseMode = .finished
            completeResponse()
            return true
        }
        writeHead(response, status, framing: .contentLength(count), extra: 0)
        fileRegion = HTTP1FileRegion(file: file, offset: offset, remaining: count)
        responseMode = .finished
        notifyIfOutside()
        return true
    }

    /// The driver sent `n` more bytes of the region (`n` > 0). After the last byte the
    /// exchange completes; the driver gets a service request to continue with the next one.
    package func fileRegionAdvanced(by n: Int) {
        guard var r = fileRegion else { return }
        r.offset += Int64(n)
        r.remaining -= Int64(n)
        if r.remaining > 0 {
            fileRegion = r
            return
        }
        fileRegion = nil
        if state == .handling { completeResponse() }
    }
}

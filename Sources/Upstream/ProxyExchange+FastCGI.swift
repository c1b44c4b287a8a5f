import HTTPCore
import IOCore

/// The FastCGI side of an exchange (`transport fastcgi`): the request goes out as
/// BEGIN_REQUEST, PARAMS and STDIN records (the body streamed as it arrives, with the same
/// back-pressure as HTTP), and the records that come back are taken apart here: STDOUT into
/// `cgiOut`, where the CGI head is parsed and the body streamed from, STDERR kept for
/// `capture_stderr`, END_REQUEST ending the body. One request per connection (Caddy never sets
/// FCGI_KEEP_CONN).
extension ProxyExchange {
    func sendFastCGIRequest(_ c: UpstreamConnection, _ h: UpstreamHost, _ p: ReverseProxy) {
        guard let options = p.configuration.fastcgi, let params = cgiParams else { return }
        RequestHead.buildFields(request, config, upstream: h.address, upgrade: nil, into: &upFields, scratch: scratch)
        params.clear()
        let length: Int64 = bodyPhase == .none ? 0 : (request.contentLength ?? 0)
        FastCGIParams.build(request, options, upstream: h.address, fields: upFields, contentLength: length,
                            into: params, scratch: scratch)
        FastCGI.appendBeginRequest(keepConn: false, into: c.output)
        FastCGI.appendStream(.params, params.readable, into: c.output)
        FastCGI.appendEndOfStream(.params, into: c.output)
        parser.resetForCGI()
        if bodyPhase == .notStarted {
            c.flushQueued()
            startBody()
        } else {
            FastCGI.appendEndOfStream(.stdin, into: c.output)
            c.flushQueued()
            c.armReadTimer(head: true)
        }
    }

    /// Demultiplexes what the connection read, then parses the head or streams the body.
    func processFastCGI() {
        guard let c = conn, let out = cgiOut else { return }
        let captures = config.fastcgi?.captureStderr ?? false
        demux: while !fcgiEnded {
            switch fcgiDecoder.next(c.input) {
            case .stdout(let n):
                out.append(UnsafeRawBufferPointer(start: c.input.base + c.input.readerIndex, count: n))
                c.input.consume(n)
            case .stderr(let n):
                if captures && fcgiStderr.count < 65536 {
                    fcgiStderr.append(contentsOf: UnsafeRawBufferPointer(start: c.input.base + c.input.readerIndex, count: min(n, 65536 - fcgiStderr.count)))
                }
                c.input.consume(n)
            case .end:
                fcgiEnded = true
            case .needMore:
                break demux
            case .failure(let e):
                conn = nil
                c.close()
                if phase == .awaitingHead { failBeforeHead(.fastcgi(e)) } else { abortMidBody() }
                return
            }
        }
        switch phase {
        case .awaitingHead:
            switch parser.parse(out, into: &response.fields) {
            case .needMore:
                // Caddy reads the head with textproto, which takes EOF as its end.
                if fcgiEnded && out.isEmpty { break }
                if fcgiEnded || c.peerEOF {
                    closeBeforeHead(c, .closed)
                }
                return
            case .failure(let e):
                closeBeforeHead(c, .protocolError(e))
                return
            case .complete:
                break
            }
            if onHead(c) && phase == .streaming { pumpBody() }
        case .streaming:
            pumpBody()
        default:
            return
        }
    }

    /// Logs the application's STDERR (`capture_stderr`) once the response ends.
    func logStderr(status: Int) {
        guard !fcgiStderr.isEmpty else { return }
        ProxyLog.fastcgiStderr(fcgiStderr, request: request, status: status)
        fcgiStderr.removeAll(keepingCapacity: true)
    }
}

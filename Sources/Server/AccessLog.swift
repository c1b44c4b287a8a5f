#if canImport(Glibc)
import Glibc
#endif
import Config
import HTTPCore
import IOCore

/// Where one access-log entry goes: the logger name (`http.log.access[.NAME]`) and the logs
/// that take it, resolved when the runtime is built.
package struct AccessLogTarget: Sendable {
    package let loggerName: [UInt8]
    package let sinks: [LogSink]
}

/// Writes Caddy-shaped `http.log.access` lines (caddy-behavior §14) without Foundation: each
/// loop formats an entry once into a scratch buffer, then appends it as JSON or console text to
/// one buffer per log writer, flushed once per loop iteration (or at 12 KiB).
package final class AccessLogWriter {
    /// The buffer the formatting helpers append to.
    private var out: ByteBuffer
    private let scratch: ByteBuffer
    /// `log_append` values computed while an entry is formatted.
    private lazy var valueScratch = ByteBuffer(capacity: 256)
    private var buffers: [(output: LogOutput, buffer: ByteBuffer)] = []

    package init() {
        scratch = ByteBuffer(capacity: 4 * 1024)
        out = scratch
    }

    /// Appends one entry for a finished request to every target log whose level allows it.
    package func log(request r: HTTPRequest, response res: HTTPResponse, serverHeader: [UInt8], nowNanos: UInt64,
                     targets: [AccessLogTarget]) {
        if r.logSkip { return }  // `log_skip`
        // Caddy logs a request nothing answered as msg "NOP" with status 0 (Go writes the
        // implicit 200 after the handler chain returned).
        let status = res.unanswered ? 0 : res.status
        let level: LogLevel = status >= 500 ? .error : .info
        var any = false
        for t in targets { for s in t.sinks where s.minimumLevel <= level { any = true } }
        guard any else { return }
        let (sec, nsec) = Clock.realtime()
        scratch.clear()
        out = scratch
        out.append("{\"request\":{\"remote_ip\":\"")
        r.connection.remote?.writeIP(into: out)
        out.append("\",\"remote_port\":\"")
        if let p = r.connection.remote?.port, r.connection.remote?.family != AF_UNIX { out.appendDecimal(p) }
        out.append("\",\"client_ip\":\"")
        if r.vars.withValue("client_ip", { appendEscaped($0) }) == nil { r.connection.remote?.writeIP(into: out) }
        out.append("\",\"proto\":\"")
        out.append(r.version.protoString)
        out.append("\",\"method\":\"")
        r.withLineBytes(r.methodRange) { appendEscaped($0) }
        out.append("\",\"host\":\"")
        // The head as received (Caddy logs a clone taken before the handlers).
        if let a = r.fieldsChanged ? r.originalAuthorityRange : r.authorityRange { r.withLineBytes(a) { appendEscaped($0) } }
        out.append("\",\"uri\":\"")
        r.withLineBytes(r.targetRange) { appendEscaped($0) }
        out.append("\",\"headers\":")
        appendHeaderMap(r.fieldsChanged ? r.originalFields : r.fields, extraServer: nil)
        if r.connection.isTLS {
            // Caddy's request.tls object: resumed, version, cipher_suite, proto, server_name.
            out.append(",\"tls\":{\"resumed\":")
            out.append(r.connection.tlsResumed ? "true" : "false")
            out.append(",\"version\":")
            out.appendDecimal(Int(r.connection.tlsVersion))
            out.append(",\"cipher_suite\":")
            out.appendDecimal(Int(r.connection.tlsCipherSuite))
            out.append(",\"proto\":\"")
            if let p = r.connection.tlsProtocol { appendEscaped(string: p) }
            out.append("\",\"server_name\":\"")
            if let sn = r.connection.serverName { appendEscaped(string: sn) }
            out.append("\"}")
        }
        out.append("},\"bytes_read\":")
        out.appendDecimal(Int(r.bodyBytesRead))
        out.append(",\"user_id\":\"")
        if let u = r.authUser { appendEscaped(string: u) }
        out.append("\",\"duration\":")
        let dur = nowNanos >= r.startNanos ? Int(nowNanos - r.startNanos) : 0
        out.appendDecimal(dur / 1_000_000_000)
        out.append(byte: UInt8(ascii: "."))
        appendPadded(dur % 1_000_000_000, digits: 9)
        out.append(",\"size\":")
        out.appendDecimal(Int(res.bodyBytes))
        out.append(",\"status\":")
        out.appendDecimal(status)
        out.append(",\"resp_headers\":")
        appendHeaderMap(res.fields, extraServer: res.fields.contains(.server) ? nil : serverHeader)
        if !r.logFields.isEmpty { appendExtraFields(r, res) }
        out.append(byte: UInt8(ascii: "}"))
        let body = UnsafeRawBufferPointer(start: scratch.base + scratch.readerIndex, count: scratch.readableBytes)
        for t in targets {
            for sink in t.sinks where sink.minimumLevel <= level {
                out = buffer(for: sink.output)
                switch sink.format {
                case .json:
                    out.append(level == .error ? "{\"level\":\"error\",\"ts\":" : "{\"level\":\"info\",\"ts\":")
                    out.appendDecimal(sec)
                    out.append(byte: UInt8(ascii: "."))
                    appendPadded(nsec, digits: 9)
                    out.append(",\"logger\":\"")
                    out.append(t.loggerName)
                    out.append(res.unanswered ? "\",\"msg\":\"NOP\"," : "\",\"msg\":\"handled request\",")
                    out.append(UnsafeRawBufferPointer(rebasing: body[1...]))
                case .console:
                    ConsoleFormat.appendTime(out, seconds: sec, nanos: nsec)
                    out.append(byte: 9)
                    ConsoleFormat.appendLevel(out, level)
                    out.append(byte: 9)
                    out.append(t.loggerName)
                    out.append(res.unanswered ? "\tNOP\t" : "\thandled request\t")
                    ConsoleFormat.appendSpaced(out, body)
                }
                out.append(byte: 10)
                if out.readableBytes > 12 * 1024 { flush(sink.output, out) }
            }
        }
        out = scratch
    }

    /// `log_append` fields: the early ones in order, then the others in reverse (Caddy adds
    /// each on the way back up the handler chain).
    private func appendExtraFields(_ r: HTTPRequest, _ res: HTTPResponse) {
        let fields = r.logFields
        func put(_ key: [UInt8], _ kind: LogValueKind, _ value: UnsafeRawBufferPointer) {
            out.append(",\"")
            key.withUnsafeBytes { appendEscaped($0) }
            out.append("\":")
            switch kind {
            case .string:
                out.append(byte: UInt8(ascii: "\""))
                appendEscaped(value)
                out.append(byte: UInt8(ascii: "\""))
            case .literal: out.append(value)
            case .null: out.append("null")
            }
        }
        fields.bytes.withUnsafeBytes { b in
            for e in fields.entries where e.early {
                put(e.source.logKey, e.kind, UnsafeRawBufferPointer(rebasing: b[Int(e.start)..<Int(e.start + e.count)]))
            }
        }
        for e in fields.entries.reversed() where !e.early {
            valueScratch.clear()
            let kind = e.source.appendLogValue(r, res, into: valueScratch)
            put(e.source.logKey, kind, valueScratch.readable)
        }
    }

    /// This loop's buffer for a writer (a handful at most).
    private func buffer(for output: LogOutput) -> ByteBuffer {
        for b in buffers where b.output === output { return b.buffer }
        let b = ByteBuffer(capacity: 16 * 1024)
        buffers.append((output, b))
        return b
    }

    /// Writes every buffered line.
    package func flush() {
        for (o, b) in buffers where !b.isEmpty { flush(o, b) }
    }

    /// After a reload: writes what is pending and drops the buffers, so writers the new config
    /// no longer uses are released (and their files closed).
    package func forgetWriters() {
        flush()
        buffers.removeAll()
    }

    private func flush(_ output: LogOutput, _ b: ByteBuffer) {
        output.write(UnsafeRawBufferPointer(start: b.base + b.readerIndex, count: b.readableBytes))
        b.clear()
    }

    private func appendPadded(_ v: Int, digits: Int) {
        var div = 1
        for _ in 1..<digits { div *= 10 }
        var x = v
        while div > 0 {
            out.append(byte: UInt8(48 + (x / div) % 10))
            x %= div
            div /= 10
        }
    }

    private func appendHeaderMap(_ f: HTTPFields, extraServer: [UInt8]?) {
        out.append(byte: UInt8(ascii: "{"))
        var first = true
        let n = f.count
        var i = 0
        while i < n {
            // Skip names already written (grouped with their first occurrence).
            var seen = false
            f.withField(i) { name, _ in
                var j = 0
                while j < i {
                    if f.withField(j, { n2, _ in AccessLogWriter.sameName(name, n2) }) { seen = true; break }
                    j += 1
                }
            }
            if !seen {
                if !first { out.append(byte: UInt8(ascii: ",")) }
                first = false
                let token = f.entries[i].token
                f.withField(i) { name, _ in
                    out.append(byte: UInt8(ascii: "\""))
                    appendCanonical(name)
                    out.append("\":[")
                    let redact = token == .cookie || token == .setCookie || token == .authorization || token == .proxyAuthorization
                    var firstValue = true
                    var k = i
                    while k < n {
                        f.withField(k) { n2, v in
                            if AccessLogWriter.sameName(name, n2) {
                                if !firstValue { out.append(byte: UInt8(ascii: ",")) }
                                firstValue = false
                                out.append(byte: UInt8(ascii: "\""))
                                if redact { out.append("REDACTED") } else { appendEscaped(v) }
                                out.append(byte: UInt8(ascii: "\""))
                            }
                        }
                        k += 1
                    }
                    out.append(byte: UInt8(ascii: "]"))
                }
            }
            i += 1
        }
        if let s = extraServer {
            if !first { out.append(byte: UInt8(ascii: ",")) }
            out.append("\"Server\":[\"")
            out.append(s)
            out.append("\"]")
        }
        out.append(byte: UInt8(ascii: "}"))
    }

    static func sameName(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where (a[i] | 0x20) != (b[i] | 0x20) { return false }
        return true
    }

    /// Go's CanonicalMIMEHeaderKey: upper-case the first letter and each letter after `-`.
    private func appendCanonical(_ name: UnsafeRawBufferPointer) {
        var upper = true
        for c in name {
            var x = c
            if upper, x >= 0x61, x <= 0x7A { x -= 0x20 } else if !upper, x >= 0x41, x <= 0x5A { x += 0x20 }
            appendEscapedByte(x)
            upper = x == UInt8(ascii: "-")
        }
    }

    private func appendEscaped(string s: String) {
        var s = s
        s.withUTF8 { appendEscaped(UnsafeRawBufferPointer($0)) }
    }

    /// JSON string escaping (RFC 8259 §7); bytes ≥ 0x80 are copied (invalid UTF-8 becomes U+FFFD).
    private func appendEscaped(_ b: UnsafeRawBufferPointer) {
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c < 0x80 {
                appendEscapedByte(c)
                i += 1
                continue
            }
            let len = AccessLogWriter.utf8SequenceLength(b, i)
            if len == 0 {
                out.append("\\ufffd")
                i += 1
            } else {
                out.append(UnsafeRawBufferPointer(rebasing: b[i..<(i + len)]))
                i += len
            }
        }
    }

    @inline(__always)
    private func appendEscapedByte(_ c: UInt8) {
        switch c {
        case UInt8(ascii: "\""): out.append("\\\"")
        case UInt8(ascii: "\\"): out.append("\\\\")
        case 0x0A: out.append("\\n")
        case 0x0D: out.append("\\r")
        case 0x09: out.append("\\t")
        case 0..<0x20, 0x7F:
            out.append("\\u00")
            let hex: StaticString = "0123456789abcdef"
            out.append(byte: hex.utf8Start[Int(c >> 4)])
            out.append(byte: hex.utf8Start[Int(c & 0xF)])
        default: out.append(byte: c)
        }
    }

    /// Length of a valid UTF-8 sequence at `i`, or 0 when invalid.
    static func utf8SequenceLength(_ b: UnsafeRawBufferPointer, _ i: Int) -> Int {
        let c = b[i]
        let len: Int
        if c & 0xE0 == 0xC0 { len = 2 } else if c & 0xF0 == 0xE0 { len = 3 } else if c & 0xF8 == 0xF0 { len = 4 } else { return 0 }
        guard i + len <= b.count else { return 0 }
        for k in 1..<len where b[i + k] & 0xC0 != 0x80 { return 0 }
        return len
    }
}

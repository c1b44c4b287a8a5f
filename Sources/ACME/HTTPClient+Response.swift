import IOCore

/// Reading an HTTP/1.1 response (RFC 9112 §4–§7) off an `HTTPClientConnection`: status line,
/// header fields, then the body framed by chunked coding, Content-Length, or the end of the
/// connection (§6.3). Strict enough for a trusted-but-verified CA, bounded in size.
extension HTTPClientConnection {
    /// Largest response head accepted.
    static let maximumHeadBytes = 64 * 1024

    func readResponse(noBody: Bool, limit: Int, deadline: UInt64, url: String) throws(ACMEError) -> HTTPClientResponse {
        var headEnd: Int?
        while headEnd == nil {
            headEnd = HTTPClientConnection.find([13, 10, 13, 10], in: plain.readable)
            if headEnd != nil { break }
            guard plain.readableBytes < HTTPClientConnection.maximumHeadBytes else {
                throw .transport("\(url): response head too large")
            }
            guard try readMore(deadline: deadline) else { throw .transport("\(url): connection closed before a response") }
        }
        let headBytes = Array(plain.readable[0..<headEnd!])
        plain.consume(headEnd! + 4)
        let lines = String(decoding: headBytes, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        guard let statusLine = lines.first else { throw .transport("\(url): empty response") }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...999).contains(status)
        else {
            throw .transport("\(url): malformed status line \"\(statusLine.prefix(80))\"")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw .transport("\(url): malformed header line") }
            let name = line[line.startIndex..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces()
            headers.append((name, value))
        }
        var response = HTTPClientResponse(status: status, headers: headers, body: [])
        if status < 200 {
            // 1xx interim responses: skip to the final one.
            return try readResponse(noBody: noBody, limit: limit, deadline: deadline, url: url)
        }
        if noBody || status == 204 || status == 304 { return response }
        let te = response.header("transfer-encoding")?.lowercased()
        if let te, te.contains("chunked") {
            response.body = try readChunked(limit: limit, deadline: deadline, url: url)
        } else if let cl = response.header("content-length") {
            guard let n = Int(cl), n >= 0 else { throw .transport("\(url): invalid Content-Length \(cl)") }
            guard n <= limit else { throw .transport("\(url): response body too large (\(n) bytes)") }
            while plain.readableBytes < n {
                guard try readMore(deadline: deadline) else { throw .transport("\(url): connection closed mid-body") }
            }
            response.body = Array(plain.readable[0..<n])
            plain.consume(n)
        } else {
            while try readMore(deadline: deadline) {
                guard plain.readableBytes <= limit else { throw .transport("\(url): response body too large") }
            }
            response.body = plain.readableArray()
            plain.clear()
        }
        return response
    }

    /// RFC 9112 §7.1: `size[;ext] CRLF data CRLF` … `0 CRLF [trailers] CRLF`.
    private func readChunked(limit: Int, deadline: UInt64, url: String) throws(ACMEError) -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let line = try readLine(deadline: deadline, url: url)
            let sizeText = line.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces() } ?? ""
            guard let size = Int(sizeText, radix: 16), size >= 0 else {
                throw .transport("\(url): invalid chunk size \"\(sizeText.prefix(20))\"")
            }
            if size == 0 {
                while try !readLine(deadline: deadline, url: url).isEmpty {}  // trailers
                return body
            }
            guard body.count + size <= limit else { throw .transport("\(url): response body too large") }
            while plain.readableBytes < size + 2 {
                guard try readMore(deadline: deadline) else { throw .transport("\(url): connection closed mid-chunk") }
            }
            body += plain.readable[0..<size]
            plain.consume(size + 2)
        }
    }

    private func readLine(deadline: UInt64, url: String) throws(ACMEError) -> String {
        while true {
            if let end = HTTPClientConnection.find([13, 10], in: plain.readable) {
                let s = String(decoding: plain.readable[0..<end], as: UTF8.self)
                plain.consume(end + 2)
                return s
            }
            guard plain.readableBytes < 8192 else { throw .transport("\(url): chunk line too long") }
            guard try readMore(deadline: deadline) else { throw .transport("\(url): connection closed mid-body") }
        }
    }

    static func find(_ needle: [UInt8], in hay: UnsafeRawBufferPointer) -> Int? {
        guard hay.count >= needle.count else { return nil }
        var i = 0
        while i + needle.count <= hay.count {
            var match = true
            for k in 0..<needle.count where hay[i + k] != needle[k] {
                match = false
                break
            }
            if match { return i }
            i += 1
        }
        return nil
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (RFC 9110 §5.5 OWS).
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

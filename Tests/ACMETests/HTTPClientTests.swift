import Foundation
import IOCore
import TLS
import Testing

@testable import ACME

/// A one-shot TCP server on 127.0.0.1: accepts one connection, reads the request head, sends
/// `reply` (optionally through TLS with `certificate`), closes.
final class OneShotServer: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private(set) var request = ""
    private let done = DispatchSemaphore(value: 0)

    init(reply: [UInt8], certificate: TLSCertificate? = nil) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        listen(fd, 1)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        let context = try certificate.map { try TLSContext(server: TLSServerConfiguration(certificates: CertificateSource([$0]))) }
        Thread.detachNewThread { [self] in
            let c = accept(self.fd, nil, nil)
            defer { close(c); close(self.fd); done.signal() }
            guard c >= 0 else { return }
            if let context { serveTLS(c, context, reply) } else { servePlain(c, reply) }
        }
    }

    func wait() { done.wait() }

    private func servePlain(_ c: Int32, _ reply: [UInt8]) {
        var buf = [UInt8](repeating: 0, count: 65536)
        var got: [UInt8] = []
        while !String(decoding: got, as: UTF8.self).contains("\r\n\r\n") {
            let n = read(c, &buf, buf.count)
            if n <= 0 { return }
            got += buf[0..<n]
        }
        request = String(decoding: got, as: UTF8.self)
        _ = reply.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
    }

    private func serveTLS(_ c: Int32, _ context: TLSContext, _ reply: [UInt8]) {
        let cin = ByteBuffer(), cout = ByteBuffer(), plain = ByteBuffer()
        guard let tls = try? TLSConnection(server: context, input: cin, output: cout) else { return }
        var buf = [UInt8](repeating: 0, count: 65536)
        var sent = false
        while true {
            let n = read(c, &buf, buf.count)
            if n <= 0 { return }
            cin.append(Array(buf[0..<n]))
            guard (try? tls.feed(into: plain)) != nil else { return }
            if !sent, String(decoding: plain.readable, as: UTF8.self).contains("\r\n\r\n") {
                request = String(decoding: plain.readable, as: UTF8.self)
                try? tls.write(reply)
                tls.shutdown()
                sent = true
            }
            if !cout.isEmpty {
                _ = cout.readable.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
                cout.clear()
            }
            if sent { return }
        }
    }
}

@Suite("Blocking HTTP/1.1 client")
struct HTTPClientTests {
    func get(_ reply: String, method: String = "GET") throws -> (HTTPClientResponse, String) {
        let server = try OneShotServer(reply: Array(reply.utf8))
        let client = try ACMEHTTPClient(timeoutMilliseconds: 5_000)
        let r = try client.perform(method: method, url: "http://127.0.0.1:\(server.port)/dir?x=1", headers: [("Accept", "application/json")], body: nil)
        server.wait()
        return (r, server.request)
    }

    @Test func contentLength() throws {
        let (r, req) = try get("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nReplay-Nonce: abc\r\nContent-Length: 2\r\n\r\n{}extra")
        #expect(r.status == 200 && r.body == Array("{}".utf8) && r.header("REPLAY-NONCE") == "abc")
        #expect(req.hasPrefix("GET /dir?x=1 HTTP/1.1\r\nHost: 127.0.0.1:"))
        #expect(req.contains("User-Agent: Berth ACME\r\n") && req.contains("Accept: application/json\r\n"))
    }

    @Test func chunkedWithInterimResponse() throws {
        let (r, _) = try get("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nLocation: /x\r\n\r\n4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: y\r\n\r\n")
        #expect(r.status == 201 && String(decoding: r.body, as: UTF8.self) == "abcdefg" && r.header("location") == "/x")
    }

    @Test func closeDelimitedAndHead() throws {
        let (r, _) = try get("HTTP/1.0 200 OK\r\n\r\nuntil close")
        #expect(String(decoding: r.body, as: UTF8.self) == "until close")
        let (h, req) = try get("HTTP/1.1 200 OK\r\nReplay-Nonce: n\r\nContent-Length: 10\r\n\r\n", method: "HEAD")
        #expect(h.body.isEmpty && h.header("replay-nonce") == "n" && req.hasPrefix("HEAD "))
    }

    @Test func malformedResponsesAreTransportErrors() throws {
        for reply in ["HTTP/2 200\r\n\r\n", "garbage\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"] {
            #expect(throws: ACMEError.self) { _ = try get(reply) }
        }
    }

    @Test func connectionRefusedAndBadURL() throws {
        let client = try ACMEHTTPClient(timeoutMilliseconds: 2_000)
        #expect {
            try client.perform(method: "GET", url: "http://127.0.0.1:1/", headers: [], body: nil)
        } throws: { e in
            if case .transport(let m) = e as? ACMEError { return m.contains("connecting to 127.0.0.1:1") }
            return false
        }
        #expect(throws: ACMEError.self) { try client.perform(method: "GET", url: "gopher://x/", headers: [], body: nil) }
    }

    @Test func httpsVerifiesTheCAWithTrustedRoots() throws {
        let now = Int(Date().timeIntervalSince1970)
        var root = X509Builder(commonName: "Pebble-like Root", notBefore: now - 60, notAfter: now + 3600)
        root.isCA = true
        root.keyUsage = "keyCertSign"
        root.extendedKeyUsage = nil
        let r = try root.sign(key: try TLSPrivateKey.generateECDSA(), issuer: nil)
        var leaf = X509Builder(commonName: nil, notBefore: now - 60, notAfter: now + 1800)
        leaf.ipAddresses = ["127.0.0.1"]
        let cert = try leaf.sign(key: try TLSPrivateKey.generateECDSA(), issuer: r)

        let server = try OneShotServer(reply: Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".utf8), certificate: cert)
        let client = try ACMEHTTPClient(trustRoots: .pem(r.leafPEM()), timeoutMilliseconds: 5_000)
        let resp = try client.perform(method: "POST", url: "https://127.0.0.1:\(server.port)/new-order", headers: [], body: Array("{}".utf8))
        server.wait()
        #expect(resp.status == 200 && resp.body == Array("hello".utf8))
        #expect(server.request.contains("Content-Length: 2\r\n\r\n{}"))

        // Not trusted: the handshake fails with a verification error.
        let other = try OneShotServer(reply: [], certificate: cert)
        let strict = try ACMEHTTPClient(trustRoots: .pem(try LocalTestCA.leaf(["x.example"]).leafPEM()), timeoutMilliseconds: 5_000)
        #expect {
            try strict.perform(method: "GET", url: "https://127.0.0.1:\(other.port)/", headers: [], body: nil)
        } throws: { e in
            if case .transport(let m) = e as? ACMEError { return m.contains("TLS handshake") }
            return false
        }
        other.wait()
    }
}

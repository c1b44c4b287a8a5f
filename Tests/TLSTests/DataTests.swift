import IOCore
import Testing

@testable import TLS

@Suite struct DataTests {
    @Test(arguments: [TLSVersion.tls13, .tls12])
    func oneMebibyteEachWaySplitAtOddSizes(version: TLSVersion) throws {
        let client = try Fixtures.clientContext { $0.maximumVersion = version }
        let hs = try Handshake(client: client, server: Fixtures.serverContext(), chunk: 1337)
        #expect(hs.succeeded)
        let up = Fixtures.bytes(1 << 20, seed: 1)
        let down = Fixtures.bytes(1 << 20, seed: 2)
        var gotUp: [UInt8] = []
        var gotDown: [UInt8] = []
        var offset = 0
        let writeSizes = [1, 7919, 16384, 16385, 3, 65537, 4093]
        var i = 0
        while offset < up.count {
            let n = min(writeSizes[i % writeSizes.count], up.count - offset)
            i += 1
            try up[offset..<(offset + n)].withUnsafeBytes { try hs.client.connection.write($0) }
            try down[offset..<(offset + n)].withUnsafeBytes { try hs.server.connection.write($0) }
            offset += n
            pump(hs.client, hs.server, chunk: 1337)
            gotUp += hs.server.takePlaintext()
            gotDown += hs.client.takePlaintext()
        }
        #expect(hs.client.error == nil && hs.server.error == nil)
        #expect(gotUp.count == up.count && gotUp == up)
        #expect(gotDown.count == down.count && gotDown == down)
    }

    @Test func releasingIdleBuffersStillCarriesData() throws {
        let server = try Fixtures.serverContext { $0.releaseIdleBuffers = true }
        let hs = try Handshake(client: Fixtures.clientContext(), server: server, chunk: 999)
        #expect(hs.succeeded)
        let payload = Fixtures.bytes(100_000, seed: 4)
        #expect(try hs.send(payload, from: hs.client, chunk: 999) == payload)
        #expect(try hs.send(payload, from: hs.server, chunk: 999) == payload)
    }

    @Test func closeNotifyBothWays() throws {
        let hs = try Handshake(client: Fixtures.clientContext(), server: Fixtures.serverContext())
        try hs.client.connection.write(Array("last words".utf8))
        #expect(hs.client.connection.shutdown() == false)  // sent ours, peer's not seen yet
        #expect(hs.client.connection.sentCloseNotify)
        pump(hs.client, hs.server)
        #expect(hs.server.closeNotifyReceived)
        #expect(hs.server.connection.receivedCloseNotify)
        #expect(hs.server.connection.shutdown() == true)  // answer it: both directions closed
        pump(hs.client, hs.server)
        #expect(hs.client.closeNotifyReceived)
        #expect(hs.client.error == nil && hs.server.error == nil)
        #expect(throws: TLSError.self) { try hs.client.connection.write([1]) }
        // Data queued before close_notify arrived intact.
        #expect(hs.server.takePlaintext() == Array("last words".utf8))
    }

    @Test(arguments: [TLSVersion.tls13, .tls12])
    func corruptedRecordIsAnError(version: TLSVersion) throws {
        let client = try Fixtures.clientContext { $0.maximumVersion = version }
        let hs = try Handshake(client: client, server: Fixtures.serverContext())
        try hs.client.connection.write(Array("attack at dawn".utf8))
        let out = hs.client.output
        out.base[out.writerIndex - 3] ^= 0x01  // inside the AEAD tag
        pump(hs.client, hs.server)
        let e = try #require(hs.server.error)
        #expect(e.kind == .protocolViolation)
        #expect(e.hasReason("decryption failed or bad record mac") || e.hasReason("bad record mac"), "\(e)")
        #expect(hs.server.takePlaintext().isEmpty)
        #expect(hs.server.connection.state == .failed)
        // The alert went to the client, which fails too.
        #expect(hs.client.error?.hasReason("bad record mac") == true, "\(String(describing: hs.client.error))")
        #expect(throws: TLSError.self) { try hs.server.connection.feed(into: ByteBuffer()) }
        #expect(hs.client.connection.session == nil)
    }

    @Test func plaintextHTTPGetsA400LikeGo() throws {
        let server = try Peer(server: Fixtures.serverContext())
        server.input.append(Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        server.feed()
        #expect(server.error?.kind == .plaintextHTTP)
        #expect(
            String(decoding: server.output.readableArray(), as: UTF8.self)
                == "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
    }

    @Test func shortOrForeignFirstBytes() throws {
        let server = try Peer(server: Fixtures.serverContext())
        server.input.append(Array("GET".utf8))
        server.feed()  // fewer than 5 bytes: wait
        #expect(server.error == nil && server.output.isEmpty)
        server.input.append(Array(" /x HTTP/1.0\r\n\r\n".utf8))
        server.feed()
        #expect(server.error?.kind == .plaintextHTTP)

        let other = try Peer(server: Fixtures.serverContext())
        other.input.append(Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))
        other.feed()
        #expect(other.error?.kind == .handshake)
    }

    @Test func plaintextLimitAppliesBackpressure() throws {
        let hs = try Handshake(client: Fixtures.clientContext(), server: Fixtures.serverContext())
        let payload = Fixtures.bytes(200_000, seed: 3)
        try hs.client.connection.write(payload)
        hs.server.limit = 10_000
        var got: [UInt8] = []
        var rounds = 0
        repeat {
            pump(hs.client, hs.server)
            #expect(hs.server.plaintext.readableBytes <= 10_000)
            got += hs.server.takePlaintext()
            rounds += 1
        } while hs.server.connection.hasPendingPlaintext && rounds < 100
        #expect(got == payload)
        #expect(rounds >= 20)
    }

    @Test func writeBeforeHandshakeIsRefused() throws {
        let client = try Peer(client: Fixtures.clientContext(), serverName: "localhost")
        #expect(throws: TLSError.self) { try client.connection.write([1, 2, 3]) }
        #expect(client.connection.shutdown() == false)
        #expect(client.output.isEmpty)
    }

    @Test func handshakeAndFirstRequestInOneFlight() throws {
        // TLS 1.3 clients send Finished and the first request together: the server must see the
        // handshake complete *and* the plaintext in the same feed.
        let server = try Peer(server: Fixtures.serverContext())
        let client = try Peer(client: Fixtures.clientContext(), serverName: "localhost")
        try client.connection.startHandshake()
        server.input.append(client.output.readable)
        client.output.clear()
        server.feed()
        client.input.append(server.output.readable)
        server.output.clear()
        client.feed()
        #expect(client.established)
        try client.connection.write(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        server.input.append(client.output.readable)
        client.output.clear()
        server.feed()
        #expect(server.handshakeCompletions == 1)
        #expect(server.info?.applicationProtocol == "h2")
        #expect(server.takePlaintext() == Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(!server.output.isEmpty)  // NewSessionTicket messages
    }
}

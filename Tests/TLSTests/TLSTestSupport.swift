import Foundation
import IOCore
import Testing

@testable import TLS

/// One end of an in-memory TLS connection: the socket-side buffers plus the plaintext that
/// `feed` produced, and the first error the end hit.
final class Peer {
    let input = ByteBuffer(capacity: 1024)
    let output = ByteBuffer(capacity: 1024)
    let plaintext = ByteBuffer(capacity: 1024)
    let connection: TLSConnection
    var error: TLSError?
    var handshakeCompletions = 0
    var closeNotifyReceived = false
    /// Passed to `feed` (backpressure tests).
    var limit = Int.max

    init(server context: TLSContext, localAddress: String? = nil) throws {
        connection = try TLSConnection(server: context, input: input, output: output, localAddress: localAddress)
    }

    init(client context: TLSContext, serverName: String?, session: TLSSession? = nil) throws {
        connection = try TLSConnection(
            client: context, input: input, output: output, serverName: serverName, session: session)
    }

    var info: TLSConnectionInfo? { connection.info }
    var established: Bool { connection.isEstablished }

    /// Feeds pending ciphertext; records events and errors instead of throwing.
    func feed() {
        guard error == nil else { return }
        do {
            let r = try connection.feed(into: plaintext, limit: limit)
            if r.handshakeCompleted { handshakeCompletions += 1 }
            if r.closeNotifyReceived { closeNotifyReceived = true }
        } catch {
            self.error = error
        }
    }

    /// Takes all decrypted plaintext.
    func takePlaintext() -> [UInt8] {
        let b = plaintext.readableArray()
        plaintext.clear()
        return b
    }
}

/// Moves ciphertext between two peers (at most `chunk` bytes per hop, to split records at odd
/// places) and feeds both until nothing moves.
func pump(_ a: Peer, _ b: Peer, chunk: Int = Int.max, maxRounds: Int = 1_000_000) {
    var rounds = 0
    while rounds < maxRounds {
        rounds += 1
        var moved = false
        for (from, to) in [(a, b), (b, a)] where !from.output.isEmpty {
            let n = min(chunk, from.output.readableBytes)
            to.input.append(UnsafeRawBufferPointer(rebasing: from.output.readable.prefix(n)))
            from.output.consume(n)
            moved = true
        }
        let before = (
            a.input.readableBytes, b.input.readableBytes, a.plaintext.readableBytes, b.plaintext.readableBytes
        )
        if !a.input.isEmpty || a.connection.hasPendingPlaintext { a.feed() }
        if !b.input.isEmpty || b.connection.hasPendingPlaintext { b.feed() }
        let after = (a.input.readableBytes, b.input.readableBytes, a.plaintext.readableBytes, b.plaintext.readableBytes)
        if !moved && before == after && a.output.isEmpty && b.output.isEmpty { return }
    }
    Issue.record("pump did not settle")
}

/// A client and a server end, handshaken (or failed trying).
struct Handshake {
    let client: Peer
    let server: Peer

    init(
        client clientContext: TLSContext, server serverContext: TLSContext, serverName: String? = "localhost",
        session: TLSSession? = nil, localAddress: String? = nil, chunk: Int = Int.max
    ) throws {
        server = try Peer(server: serverContext, localAddress: localAddress)
        client = try Peer(client: clientContext, serverName: serverName, session: session)
        try client.connection.startHandshake()
        pump(client, server, chunk: chunk)
    }

    var succeeded: Bool { client.established && server.established && client.error == nil && server.error == nil }

    /// Sends `bytes` from one end and returns what the other end decrypted.
    func send(_ bytes: [UInt8], from sender: Peer, chunk: Int = Int.max) throws -> [UInt8] {
        try sender.connection.write(bytes)
        let receiver = sender === client ? server : client
        pump(client, server, chunk: chunk)
        return receiver.takePlaintext()
    }
}

/// Certificates shared by the tests: a local CA in a temporary directory.
enum Fixtures {
    static let directory: String = {
        let d = NSTemporaryDirectory() + "berth-tls-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    static let ca: LocalCA = try! LocalCA(directory: directory + "/pki/authorities/local")

    static let localhost: TLSCertificate = try! ca.issue(names: ["localhost", "127.0.0.1", "::1"])
    static let example: TLSCertificate = try! ca.issue(names: ["example.com", "www.example.com"])
    static let wildcard: TLSCertificate = try! ca.issue(names: ["*.example.org"])
    static let other: TLSCertificate = try! ca.issue(names: ["other.test"])

    /// An RSA-2048 leaf (for the TLS 1.2 ECDHE-RSA suites).
    static let rsa: TLSCertificate = {
        let now = Int(Date().timeIntervalSince1970)
        var b = X509Builder(commonName: nil, notBefore: now - 60, notAfter: now + 3600)
        b.dnsNames = ["rsa.test"]
        b.keyUsage = "digitalSignature,keyEncipherment"
        return try! b.sign(key: try! TLSPrivateKey.generateRSA(bits: 2048), issuer: ca.intermediate)
    }()

    static var rootPEM: [UInt8] { ca.rootCertificatePEM }

    /// A fresh temporary directory.
    static func temporaryDirectory(_ tag: String) -> String {
        let d = directory + "/\(tag)-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func serverContext(
        _ certs: [TLSCertificate] = [localhost], defaultServerName: String? = nil,
        protocols: [ApplicationProtocol] = [.h2, .http11], ticketKeys: TicketKeyRing? = TicketKeyRing(),
        configure: (inout TLSServerConfiguration) -> Void = { _ in }
    ) throws -> TLSContext {
        var c = TLSServerConfiguration(
            certificates: CertificateSource(certs, defaultServerName: defaultServerName), ticketKeys: ticketKeys)
        c.applicationProtocols = protocols
        configure(&c)
        return try TLSContext(server: c)
    }

    static func clientContext(
        verify: Bool = true, protocols: [ApplicationProtocol] = [.h2, .http11],
        configure: (inout TLSClientConfiguration) -> Void = { _ in }
    ) throws -> TLSContext {
        var c = TLSClientConfiguration(
            trustRoots: verify ? .pem(rootPEM) : .insecureNoVerification, applicationProtocols: protocols)
        configure(&c)
        return try TLSContext(client: c)
    }

    /// Deterministic pseudo-random bytes.
    static func bytes(_ n: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
        var x = seed
        var out = [UInt8](repeating: 0, count: n)
        for i in 0..<n {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            out[i] = UInt8(truncatingIfNeeded: x)
        }
        return out
    }
}

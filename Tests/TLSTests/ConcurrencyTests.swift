import Foundation
import Testing

@testable import TLS

/// Contexts are shared by every event-loop thread; the certificate snapshot and the ticket
/// keys change under them.
@Suite struct ConcurrencyTests {
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var ok = 0
        private var failures: [String] = []
        func record(_ success: Bool, _ why: @autoclosure () -> String) {
            lock.lock()
            defer { lock.unlock() }
            if success { ok += 1 } else { failures.append(why()) }
        }
        var result: (Int, [String]) {
            lock.lock()
            defer { lock.unlock() }
            return (ok, failures)
        }
    }

    @Test func parallelHandshakesWhileSwappingAndRotating() throws {
        let source = CertificateSource([Fixtures.localhost, Fixtures.example])
        let ring = TicketKeyRing()
        let server = try TLSContext(server: TLSServerConfiguration(certificates: source, ticketKeys: ring))
        let client = try Fixtures.clientContext()
        let tally = Tally()
        let spare = try Fixtures.ca.issue(names: ["localhost", "127.0.0.1", "::1"])
        DispatchQueue.concurrentPerform(iterations: 5) { worker in
            for i in 0..<30 {
                if worker == 0 {
                    // The "ACME renewal" and "ticket timer" thread.
                    source.update { $0.adding(i % 2 == 0 ? spare : Fixtures.localhost) }
                    ring.rotate()
                    continue
                }
                do {
                    let name = i % 2 == 0 ? "localhost" : "example.com"
                    let hs = try Handshake(client: client, server: server, serverName: name)
                    let echoed = try hs.send(Array("ping \(worker) \(i)".utf8), from: hs.client)
                    let session = hs.client.connection.session
                    let again = try Handshake(client: client, server: server, serverName: name, session: session)
                    tally.record(
                        hs.succeeded && again.succeeded && echoed == Array("ping \(worker) \(i)".utf8),
                        "\(name): \(String(describing: hs.client.error ?? again.client.error))")
                } catch {
                    tally.record(false, "\(error)")
                }
            }
        }
        let (ok, failures) = tally.result
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(ok == 4 * 30)
        #expect(ring.rotationCount == 30)
    }
}

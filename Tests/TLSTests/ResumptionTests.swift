import IOCore
import Testing

@testable import TLS

@Suite struct ResumptionTests {
    /// Full handshake, exchange a byte each way (so TLS 1.3 tickets are read), return the
    /// client's session.
    func firstSession(client: TLSContext, server: TLSContext) throws -> TLSSession {
        let hs = try Handshake(client: client, server: server)
        #expect(hs.succeeded)
        #expect(hs.server.info?.resumed == false)
        _ = try hs.send([1], from: hs.client)
        _ = try hs.send([2], from: hs.server)
        let session = try #require(hs.client.connection.session)
        #expect(session.isResumable)
        return session
    }

    @Test(arguments: [TLSVersion.tls13, .tls12])
    func resumesWithATicket(version: TLSVersion) throws {
        let server = try Fixtures.serverContext()
        let client = try Fixtures.clientContext { $0.maximumVersion = version }
        let session = try firstSession(client: client, server: server)
        let again = try Handshake(client: client, server: server, session: session)
        #expect(again.succeeded)
        #expect(again.server.info?.resumed == true)
        #expect(again.client.info?.resumed == true)
        #expect(again.server.info?.version == version.rawValue)
        #expect(again.server.info?.applicationProtocol == "h2")
        #expect(try again.send(Array("resumed".utf8), from: again.client) == Array("resumed".utf8))
    }

    @Test func ticketsAreAcceptedByAnotherContextSharingTheRing() throws {
        // A reload builds new contexts; a shared ring keeps tickets valid.
        let ring = TicketKeyRing()
        let session = try firstSession(
            client: Fixtures.clientContext(), server: Fixtures.serverContext(ticketKeys: ring))
        let reloaded = try Fixtures.serverContext(ticketKeys: ring)
        let again = try Handshake(client: Fixtures.clientContext(), server: reloaded, session: session)
        #expect(again.server.info?.resumed == true)
        // A context with its own ring cannot open the ticket: full handshake, still succeeds.
        let stranger = try Handshake(
            client: Fixtures.clientContext(), server: Fixtures.serverContext(), session: session)
        #expect(stranger.succeeded)
        #expect(stranger.server.info?.resumed == false)
    }

    @Test(arguments: [TLSVersion.tls13, .tls12])
    func ticketSurvivesOneRotationButNotTwo(version: TLSVersion) throws {
        let ring = TicketKeyRing(rotationInterval: 3600)
        let server = try Fixtures.serverContext(ticketKeys: ring)
        let client = try Fixtures.clientContext { $0.maximumVersion = version }

        let s1 = try firstSession(client: client, server: server)
        ring.rotate()
        let afterOne = try Handshake(client: client, server: server, session: s1)
        #expect(afterOne.succeeded)
        #expect(afterOne.server.info?.resumed == true)

        let s2 = try firstSession(client: client, server: server)
        ring.rotate()
        ring.rotate()
        #expect(ring.rotationCount == 3)
        let afterTwo = try Handshake(client: client, server: server, session: s2)
        #expect(afterTwo.succeeded)  // falls back to a full handshake
        #expect(afterTwo.server.info?.resumed == false)
    }

    @Test func ticketsDisabledMeansNoResumption() throws {
        let server = try Fixtures.serverContext(ticketKeys: nil)
        let client = try Fixtures.clientContext { $0.maximumVersion = .tls12 }
        let hs = try Handshake(client: client, server: server)
        #expect(hs.succeeded)
        let session = hs.client.connection.session
        let again = try Handshake(client: client, server: server, session: session)
        #expect(again.succeeded)
        #expect(again.server.info?.resumed == false)
    }

    @Test func rotationIsLazyOnceTheIntervalPassed() throws {
        let ring = TicketKeyRing(rotationInterval: 1)
        let key = ring.keyForSealing(now: Clock.monotonicNanos())
        #expect(ring.rotationCount == 0)
        let later = ring.keyForSealing(now: Clock.monotonicNanos() + 2_000_000_000)
        #expect(ring.rotationCount == 1)
        #expect(key !== later)
        #expect(ring.key(named: key.name)?.isCurrent == false)
        #expect(ring.key(named: later.name)?.isCurrent == true)
    }
}

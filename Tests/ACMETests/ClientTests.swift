import JSON
import Foundation
import Testing

@testable import ACME

/// Records sleeps instead of sleeping.
final class SleepLog: @unchecked Sendable {
    private let lock = NSLock()
    private var _ms: [Int] = []
    var ms: [Int] { lock.withLock { _ms } }
    func add(_ v: Int) { lock.withLock { _ms.append(v) } }
}

struct Fixture {
    let store = ACMEChallengeStore()
    let ca: FakeCA
    let sleeps = SleepLog()
    let client: ACMEClient
    let logs = LogLines()

    init() throws {
        ca = FakeCA(challenges: store)
        let sleeps = self.sleeps
        client = ACMEClient(directoryURL: "https://ca.test/dir", transport: ca, accountKey: try ACMEKey.generate(),
                            sleep: { (ms: Int) throws(ACMEError) in sleeps.add(ms) })
    }

    var issuance: ACMEIssuance {
        let logs = self.logs
        return ACMEIssuance(client: client, challenges: store, log: { level, msg, fields in logs.add(level, msg, fields) })
    }
}

final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(ACMELogLevel, String, [(String, String)])] = []
    func add(_ l: ACMELogLevel, _ m: String, _ f: [(String, String)]) { lock.withLock { lines.append((l, m, f)) } }
    var messages: [String] { lock.withLock { lines.map(\.1) } }
    func fields(_ msg: String) -> [String: String]? {
        lock.withLock { lines.first { $0.1 == msg }.map { Dictionary($0.2, uniquingKeysWith: { a, _ in a }) } }
    }
}

@Suite("ACME client against an in-memory CA (RFC 8555 §7)")
struct ClientTests {
    @Test func registersAndIssuesWithHTTP01() throws {
        let f = try Fixture()
        let kid = try f.client.registerAccount(email: "ops@example.com")
        #expect(kid == "https://ca.test/acct/1")
        #expect(f.ca.accountPayload?["contact"] == .array([.string("mailto:ops@example.com")]))
        #expect(f.ca.accountPayload?["termsOfServiceAgreed"]?.boolValue == true)
        let (chain, key) = try f.issuance.obtain(names: ["example.com"], types: [.http01, .tlsALPN01])
        #expect(String(decoding: chain, as: UTF8.self).contains("BEGIN CERTIFICATE"))
        // The CSR carries the name and the new key (not the account key).
        let csr = try #require(f.ca.csr)
        #expect(Verify.csr(csr, signedBy: key))
        #expect(String(decoding: csr, as: UTF8.self).contains("example.com"))
        #expect(key.thumbprint != f.client.accountKey.thumbprint)
        #expect(f.ca.challengeStatus["http-01"] == "valid" && f.ca.challengeStatus["tls-alpn-01"] == "pending")
        // Responses are withdrawn once validated.
        #expect(f.store.http01Count == 0)
        #expect(f.logs.messages.contains("authorization finalized"))
        // The order was polled while processing, backing off from 500 ms.
        #expect(f.sleeps.ms == [500])
    }

    @Test func badNonceIsRetriedWithTheNonceFromTheError() throws {
        let f = try Fixture()
        f.ca.rejectNextNonces = 4
        try f.client.registerAccount(email: nil)
        #expect(f.ca.badNoncesSent == 4)
        // One newNonce at the start; every retry used the nonce that came with the error.
        #expect(f.ca.requests.filter { $0 == "HEAD /nonce" }.count == 1)
        #expect(f.ca.requests.filter { $0 == "POST /new-acct" }.count == 5)
    }

    @Test func badNonceRetriesAreBounded() throws {
        let f = try Fixture()
        f.client.badNonceRetries = 2
        f.ca.rejectNextNonces = 10
        #expect {
            try f.client.registerAccount(email: nil)
        } throws: { e in
            (e as? ACMEError)?.problem?.isBadNonce == true
        }
    }

    @Test func rateLimitSurfacesWithRetryAfter() throws {
        let f = try Fixture()
        try f.client.registerAccount(email: nil)
        f.ca.rateLimitOrders = true
        do {
            _ = try f.client.newOrder(["example.com"])
            Issue.record("expected a rate limit")
        } catch {
            #expect(error.problem?.isRateLimited == true)
            #expect(error.retryAfter == 3600)
            #expect(error.description.contains("rateLimited (HTTP 429): too many new orders"))
        }
    }

    @Test func transient5xxIsRetriedWithBackoff() throws {
        let f = try Fixture()
        f.ca.unavailableDirectoryCount = 2
        _ = try f.client.directory()
        #expect(f.sleeps.ms == [1_000, 2_000])
    }

    @Test func failedHTTP01FallsBackToTLSALPN01OnANewOrder() throws {
        let f = try Fixture()
        try f.client.registerAccount(email: nil)
        f.ca.failHTTP01 = true
        _ = try f.issuance.obtain(names: ["example.com"], types: [.http01, .tlsALPN01])
        #expect(f.ca.requests.filter { $0 == "POST /new-order" }.count == 2)
        let w = try #require(f.logs.fields("challenge failed; trying the next challenge type"))
        #expect(w["challenge_type"] == "http-01" && w["next"] == "tls-alpn-01")
        #expect(w["error"]?.contains("connection (HTTP 400): 127.0.0.1: Connection refused") == true)
        #expect(f.store.tlsALPN01.current.certificates.isEmpty)
    }

    @Test func failedChallengeReportsTheProblem() throws {
        let f = try Fixture()
        try f.client.registerAccount(email: nil)
        f.ca.failHTTP01 = true
        do {
            _ = try f.issuance.obtain(names: ["example.com"], types: [.http01])
            Issue.record("expected a failure")
        } catch {
            guard case .validationFailed(let id, let type, let p) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(id == "example.com" && type == "http-01")
            #expect(p?.type == "urn:ietf:params:acme:error:connection")
            #expect(error.description == "challenge http-01 for example.com failed: connection (HTTP 400): 127.0.0.1: Connection refused")
        }
    }

    @Test func externalAccountBinding() throws {
        let f = try Fixture()
        f.ca.requireEAB = true
        #expect {
            try f.client.registerAccount(email: nil)
        } throws: { e in
            if case .configuration(let m) = e as? ACMEError { return m.contains("requires External Account Binding") }
            return false
        }
        try f.client.registerAccount(email: nil, externalAccount: ("kid-1", Array("secret-mac-key-0123456789abcdef".utf8)))
        let eab = try #require(f.ca.accountPayload?["externalAccountBinding"])
        let header = try JSONValue.parse(try #require(Base64URL.decode(eab["protected"]?.stringValue ?? "")))
        #expect(header["kid"]?.stringValue == "kid-1" && header["url"]?.stringValue == "https://ca.test/new-acct")
    }

    @Test func revocationPostsTheCertificateDER() throws {
        let f = try Fixture()
        try f.client.registerAccount(email: nil)
        try f.client.revoke(certificateDER: [0x30, 0x03, 0x02, 0x01, 0x01], reason: 4)
        #expect(f.ca.revoked == [0x30, 0x03, 0x02, 0x01, 0x01])
    }

    @Test func postWithoutAccountIsRefused() throws {
        let f = try Fixture()
        #expect(throws: ACMEError.self) { try f.client.newOrder(["example.com"]) }
    }
}

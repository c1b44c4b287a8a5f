import JSON
import Foundation
import TLS

@testable import ACME

/// An in-memory ACME server (RFC 8555) behind `ACMETransport`: checks nonces and JWS headers,
/// validates challenges by asking the client's own `ACMEChallengeStore` (as a CA's validator
/// would ask the server), and can inject badNonce, rate limits, 5xx and failing validations.
final class FakeCA: ACMETransport, @unchecked Sendable {
    let base = "https://ca.test"
    let challenges: ACMEChallengeStore
    private let lock = NSLock()

    // Knobs.
    var rejectNextNonces = 0
    var rateLimitOrders = false
    var failHTTP01 = false
    var requireEAB = false
    var unavailableDirectoryCount = 0
    var processingPolls = 2

    // Observed.
    var nonces: Set<String> = []
    var nonceCounter = 0
    var badNoncesSent = 0
    var accountJWK: JSONValue?
    var accountPayload: JSONValue?
    var csr: [UInt8]?
    var revoked: [UInt8]?
    var requests: [String] = []
    var authzStatus = "pending"
    var challengeStatus: [String: String] = [:]
    var challengeError: JSONValue?
    var orderStatus = "pending"
    var domain = ""

    init(challenges: ACMEChallengeStore) { self.challenges = challenges }

    func perform(method: String, url: String, headers: [(String, String)], body: [UInt8]?) throws(ACMEError) -> HTTPClientResponse {
        lock.lock()
        defer { lock.unlock() }
        let path = String(url.dropFirst(base.count))
        requests.append("\(method) \(path)")
        switch (method, path) {
        case ("GET", "/dir"):
            if unavailableDirectoryCount > 0 {
                unavailableDirectoryCount -= 1
                return HTTPClientResponse(status: 503, headers: [], body: [])
            }
            var meta: [(String, JSONValue)] = [("termsOfService", .string(base + "/tos"))]
            if requireEAB { meta.append(("externalAccountRequired", .bool(true))) }
            return json(200, .object([
                ("newNonce", .string(base + "/nonce")), ("newAccount", .string(base + "/new-acct")),
                ("newOrder", .string(base + "/new-order")), ("revokeCert", .string(base + "/revoke")),
                ("meta", .object(meta)),
            ]))
        case ("HEAD", "/nonce"):
            return HTTPClientResponse(status: 200, headers: [("replay-nonce", newNonce())], body: [])
        case ("POST", _):
            return post(path, body ?? [])
        default:
            return problem(404, "malformed", "no such resource \(method) \(path)")
        }
    }

    private func newNonce() -> String {
        nonceCounter += 1
        let n = "nonce\(nonceCounter)"
        nonces.insert(n)
        return n
    }

    private func json(_ status: Int, _ j: JSONValue, _ extra: [(String, String)] = []) -> HTTPClientResponse {
        HTTPClientResponse(status: status, headers: [("content-type", "application/json"), ("replay-nonce", newNonce())] + extra.map { ($0.0.lowercased(), $0.1) }, body: j.bytes)
    }

    private func problem(_ status: Int, _ type: String, _ detail: String, _ extra: [(String, String)] = []) -> HTTPClientResponse {
        HTTPClientResponse(
            status: status,
            headers: [("content-type", "application/problem+json"), ("replay-nonce", newNonce())] + extra.map { ($0.0.lowercased(), $0.1) },
            body: JSONValue.object([("type", .string("urn:ietf:params:acme:error:" + type)), ("detail", .string(detail)), ("status", .int(status))]).bytes)
    }

    private func post(_ path: String, _ body: [UInt8]) -> HTTPClientResponse {
        guard let jws = try? JSONValue.parse(body), let p64 = jws["protected"]?.stringValue, let pb = Base64URL.decode(p64),
            let header = try? JSONValue.parse(pb), let payload64 = jws["payload"]?.stringValue
        else { return problem(400, "malformed", "not a JWS") }
        guard header["alg"]?.stringValue == "ES256", header["url"]?.stringValue == base + path else {
            return problem(400, "malformed", "bad alg or url")
        }
        guard let nonce = header["nonce"]?.stringValue, nonces.remove(nonce) != nil else {
            return problem(400, "badNonce", "unknown nonce")
        }
        if rejectNextNonces > 0 {
            rejectNextNonces -= 1
            badNoncesSent += 1
            return problem(400, "badNonce", "JWS has an invalid anti-replay nonce")
        }
        let payload = payload64.isEmpty ? nil : Base64URL.decode(payload64).flatMap { try? JSONValue.parse($0) }
        if path == "/new-acct" {
            guard let jwk = header["jwk"], header["kid"] == nil else { return problem(400, "malformed", "newAccount needs jwk") }
            if requireEAB && payload?["externalAccountBinding"] == nil {
                return problem(400, "externalAccountRequired", "EAB required")
            }
            accountJWK = jwk
            accountPayload = payload
            return json(201, .object([("status", .string("valid"))]), [("Location", base + "/acct/1")])
        }
        guard header["kid"]?.stringValue == base + "/acct/1" else { return problem(400, "accountDoesNotExist", "unknown kid") }
        switch path {
        case "/new-order":
            if rateLimitOrders { return problem(429, "rateLimited", "too many new orders", [("Retry-After", "3600")]) }
            domain = payload?["identifiers"]?.arrayValue?.first?["value"]?.stringValue ?? ""
            authzStatus = "pending"
            challengeStatus = ["http-01": "pending", "tls-alpn-01": "pending"]
            orderStatus = "pending"
            return json(201, order(), [("Location", base + "/order/1")])
        case "/order/1":
            return json(200, order())
        case "/authz/1":
            return json(200, .object([
                ("status", .string(authzStatus)), ("identifier", .object([("type", .string("dns")), ("value", .string(domain))])),
                ("challenges", .array([challenge("http-01", "/chall/1", "tokHTTP"), challenge("tls-alpn-01", "/chall/2", "tokALPN")])),
            ]), [("Retry-After", "1")])
        case "/chall/1", "/chall/2":
            let type = path == "/chall/1" ? "http-01" : "tls-alpn-01"
            validate(type)
            return json(200, challenge(type, path, type == "http-01" ? "tokHTTP" : "tokALPN"))
        case "/finalize/1":
            guard orderStatus == "ready", let c = payload?["csr"]?.stringValue else { return problem(403, "orderNotReady", "not ready") }
            csr = Base64URL.decode(c)
            orderStatus = "processing"
            return json(200, order())
        case "/cert/1":
            return HTTPClientResponse(status: 200, headers: [("content-type", "application/pem-certificate-chain"), ("replay-nonce", newNonce())],
                                      body: Array("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n".utf8))
        case "/revoke":
            revoked = payload?["certificate"]?.stringValue.flatMap(Base64URL.decode)
            return HTTPClientResponse(status: 200, headers: [("replay-nonce", newNonce())], body: [])
        default:
            return problem(404, "malformed", "no such resource \(path)")
        }
    }

    private func order() -> JSONValue {
        if orderStatus == "processing" {
            if processingPolls > 0 { processingPolls -= 1 } else { orderStatus = "valid" }
        }
        var o: [(String, JSONValue)] = [
            ("status", .string(orderStatus)), ("identifiers", .array([.object([("type", .string("dns")), ("value", .string(domain))])])),
            ("authorizations", .array([.string(base + "/authz/1")])), ("finalize", .string(base + "/finalize/1")),
        ]
        if orderStatus == "valid" { o.append(("certificate", .string(base + "/cert/1"))) }
        return .object(o)
    }

    private func challenge(_ type: String, _ path: String, _ token: String) -> JSONValue {
        var c: [(String, JSONValue)] = [("type", .string(type)), ("url", .string(base + path)), ("token", .string(token)),
                                   ("status", .string(challengeStatus[type] ?? "pending"))]
        if challengeStatus[type] == "invalid", let e = challengeError { c.append(("error", e)) }
        return .object(c)
    }

    /// What a validator checks, asked of the client's own challenge store.
    private func validate(_ type: String) {
        let thumb = accountJWK.map { Base64URL.encode(Digest.sha256($0.bytes)) } ?? ""
        let ok: Bool
        if type == "http-01" {
            ok = !failHTTP01
                && challenges.http01Response(path: ACMEChallengeStore.http01PathPrefix + "tokHTTP", host: domain) == "tokHTTP." + thumb
        } else {
            ok = challenges.tlsALPN01.current.match(domain) != nil
        }
        challengeStatus[type] = ok ? "valid" : "invalid"
        authzStatus = ok ? "valid" : "invalid"
        if ok {
            orderStatus = "ready"
        } else {
            orderStatus = "invalid"
            challengeError = .object([("type", .string("urn:ietf:params:acme:error:connection")),
                                      ("detail", .string("127.0.0.1: Connection refused")), ("status", .int(400))])
        }
    }
}

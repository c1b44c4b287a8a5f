import JSON
import IOCore

/// The ACME protocol engine (RFC 8555): directory, nonces, account, orders, authorizations,
/// challenges, finalization, download and revocation. Blocking; used by one background thread
/// at a time (the certificate manager's), never on an event loop.
///
/// Every POST is a JWS (§6.2) with a fresh anti-replay nonce (§6.5): the nonce of the previous
/// response is reused when there is one, else `newNonce` is asked. `badNonce` errors are
/// retried with the nonce that came with the error (§6.5: "the client SHOULD retry"), 5xx and
/// transport failures a few times with exponential backoff; everything else goes up as a
/// clear `ACMEError`.
package final class ACMEClient: @unchecked Sendable {
    /// The directory URL (`acme_ca`).
    package let directoryURL: String
    /// Signs every request.
    package let accountKey: ACMEKey
    /// The account URL (`kid`) once `registerAccount` ran or it was restored from storage.
    package var accountURL: String?
    let transport: any ACMETransport
    /// Sleeps that many milliseconds; throws `.cancelled` when the owner is stopping.
    let sleep: @Sendable (Int) throws(ACMEError) -> Void
    private var cachedDirectory: ACMEDirectory?
    private var nonce: String?

    /// `badNonce` retries per request (Pebble rejects 5 % of nonces on purpose).
    package var badNonceRetries = 10
    /// Retries of a request that failed in transport or with a 5xx.
    package var transientRetries = 3
    /// First backoff of a transient retry (doubled each time).
    package var transientBackoffMilliseconds = 1_000
    /// How long to wait for an authorization or order to leave `pending`/`processing`.
    package var pollTimeoutMilliseconds = 180_000

    package init(
        directoryURL: String, transport: any ACMETransport, accountKey: ACMEKey, accountURL: String? = nil,
        sleep: @escaping @Sendable (Int) throws(ACMEError) -> Void
    ) {
        self.directoryURL = directoryURL
        self.transport = transport
        self.accountKey = accountKey
        self.accountURL = accountURL
        self.sleep = sleep
    }

    // MARK: Directory and nonces

    /// The directory (§7.1.1), fetched once.
    package func directory() throws(ACMEError) -> ACMEDirectory {
        if let d = cachedDirectory { return d }
        let r = try withTransientRetries { () throws(ACMEError) in
            try transport.perform(method: "GET", url: directoryURL, headers: [("Accept", "application/json")], body: nil)
        }
        let json = try Self.json(r, url: directoryURL)
        guard r.status == 200, let d = ACMEDirectory(json) else {
            throw Self.failure(r, json, "directory \(directoryURL) is not an ACME directory (HTTP \(r.status))")
        }
        cachedDirectory = d
        return d
    }

    /// A fresh nonce from `newNonce` (§7.2, HEAD).
    private func freshNonce() throws(ACMEError) -> String {
        let url = try directory().newNonce
        let r = try withTransientRetries { () throws(ACMEError) in
            try transport.perform(method: "HEAD", url: url, headers: [], body: nil)
        }
        guard let n = r.header("replay-nonce"), !n.isEmpty else {
            throw .protocolViolation("newNonce (HTTP \(r.status)) sent no Replay-Nonce")
        }
        return n
    }

    // MARK: Signed requests

    /// A signed POST (§6.2) of `payload` (nil: POST-as-GET, §6.3) to `url`, signed with `kid`
    /// unless `useJWK`. Retries `badNonce`; throws problem documents as `.problem`.
    package func post(_ url: String, payload: JSONValue?, useJWK: Bool = false, accept: String? = nil) throws(ACMEError)
        -> (response: HTTPClientResponse, json: JSONValue?)
    {
        let signer: JWS.Signer
        if useJWK {
            signer = .jwk
        } else {
            guard let kid = accountURL else { throw .protocolViolation("no account yet for \(url)") }
            signer = .kid(kid)
        }
        var badNonces = 0
        while true {
            let n: String
            if let saved = nonce.take() { n = saved } else { n = try freshNonce() }
            let body: JSONValue
            do {
                body = try JWS.sign(payload: payload, url: url, nonce: n, key: accountKey, signer: signer)
            } catch {
                throw error.acme
            }
            var headers = [("Content-Type", "application/jose+json")]
            if let accept { headers.append(("Accept", accept)) }
            let r = try withTransientRetries { () throws(ACMEError) in
                try transport.perform(method: "POST", url: url, headers: headers, body: body.bytes)
            }
            if let next = r.header("replay-nonce"), !next.isEmpty { nonce = next }
            let isJSON = r.header("content-type")?.lowercased().contains("json") ?? false
            let json = isJSON && !r.body.isEmpty ? try Self.json(r, url: url) : nil
            if r.status >= 400 {
                let problem = json.flatMap { ACMEProblem($0, status: r.status) }
                    ?? ACMEProblem(type: "about:blank", detail: String(decoding: r.body.prefix(200), as: UTF8.self), status: r.status)
                if problem.isBadNonce && badNonces < badNonceRetries {
                    badNonces += 1
                    continue
                }
                throw .problem(problem, retryAfter: RetryAfter.seconds(r.header("retry-after"), now: Clock.realtime().seconds))
            }
            return (r, json)
        }
    }

    /// Runs `body`, retrying transport errors and 5xx answers (not problem documents the CA
    /// meant, like 400s) with exponential backoff.
    private func withTransientRetries(_ body: () throws(ACMEError) -> HTTPClientResponse) throws(ACMEError)
        -> HTTPClientResponse
    {
        var attempt = 0
        while true {
            do {
                let r = try body()
                if r.status >= 500 && attempt < transientRetries {
                    attempt += 1
                    try sleep(transientBackoffMilliseconds << (attempt - 1))
                    continue
                }
                return r
            } catch {
                guard case .transport = error, attempt < transientRetries else { throw error }
                attempt += 1
                try sleep(transientBackoffMilliseconds << (attempt - 1))
            }
        }
    }

    // MARK: Account

    /// Creates the account, or finds the existing one for this key (§7.3: the CA answers 200
    /// with its URL), agreeing to the terms of service. Returns the account URL (`kid`).
    @discardableResult
    package func registerAccount(email: String?, externalAccount: (keyID: String, macKey: [UInt8])? = nil)
        throws(ACMEError) -> String
    {
        let dir = try directory()
        var payload: [(String, JSONValue)] = [("termsOfServiceAgreed", .bool(true))]
        if let email, !email.isEmpty { payload.append(("contact", .array([.string("mailto:" + email)]))) }
        if let eab = externalAccount {
            payload.append(
                ("externalAccountBinding",
                 JWS.externalAccountBinding(keyID: eab.keyID, macKey: eab.macKey, accountKey: accountKey, url: dir.newAccount)))
        } else if dir.externalAccountRequired {
            throw .configuration("the CA \(directoryURL) requires External Account Binding (acme_eab / eab key_id mac_key)")
        }
        let (r, json) = try post(dir.newAccount, payload: .object(payload), useJWK: true)
        guard let location = r.header("location"), !location.isEmpty else {
            throw .protocolViolation("newAccount (HTTP \(r.status)) returned no Location")
        }
        if let status = json?["status"]?.stringValue, status != "valid" {
            throw .protocolViolation("account \(location) is \(status)")
        }
        accountURL = location
        return location
    }

    // MARK: Orders

    /// Places an order for `names` (§7.4).
    package func newOrder(_ names: [String]) throws(ACMEError) -> ACMEOrder {
        let ids = JSONValue.array(names.map { ACMEIdentifier($0).json })
        let (r, json) = try post(try directory().newOrder, payload: .object([("identifiers", ids)]))
        guard let location = r.header("location"), let json else {
            throw .protocolViolation("newOrder (HTTP \(r.status)) returned no Location or body")
        }
        return try ACMEOrder(url: location, json, status: r.status)
    }

    /// The order's current state (POST-as-GET).
    package func order(_ url: String) throws(ACMEError) -> ACMEOrder {
        let (r, json) = try post(url, payload: nil)
        guard let json else { throw .protocolViolation("order \(url): empty response") }
        return try ACMEOrder(url: url, json, status: r.status)
    }

    /// An authorization (POST-as-GET, §7.5).
    package func authorization(_ url: String) throws(ACMEError) -> ACMEAuthorization {
        let (r, json) = try post(url, payload: nil)
        guard let json else { throw .protocolViolation("authorization \(url): empty response") }
        return try ACMEAuthorization(url: url, json, status: r.status)
    }

    /// Tells the CA the challenge is ready to be validated (§7.5.1: POST `{}`).
    package func respond(to challenge: ACMEChallenge) throws(ACMEError) {
        _ = try post(challenge.url, payload: .object([]))
    }

    /// Polls an authorization until it is no longer `pending` (§7.5.1), honouring
    /// `Retry-After`, at most `pollTimeoutMilliseconds`.
    package func waitForAuthorization(_ url: String) throws(ACMEError) -> ACMEAuthorization {
        let end = Clock.monotonicNanos() + UInt64(pollTimeoutMilliseconds) * 1_000_000
        var delay = 500
        while true {
            let (r, json) = try post(url, payload: nil)
            guard let json else { throw .protocolViolation("authorization \(url): empty response") }
            let a = try ACMEAuthorization(url: url, json, status: r.status)
            if a.status != "pending" { return a }
            guard Clock.monotonicNanos() < end else {
                throw .protocolViolation("authorization for \(a.identifier) still pending after \(pollTimeoutMilliseconds / 1000)s")
            }
            try sleep(Self.pollDelay(r, fallback: delay))
            delay = min(delay * 2, 5_000)
        }
    }

    /// Polls an order until it leaves `pending`/`processing` (§7.4).
    package func waitForOrder(_ url: String, whileIn states: Set<String>) throws(ACMEError) -> ACMEOrder {
        let end = Clock.monotonicNanos() + UInt64(pollTimeoutMilliseconds) * 1_000_000
        var delay = 500
        while true {
            let (r, json) = try post(url, payload: nil)
            guard let json else { throw .protocolViolation("order \(url): empty response") }
            let o = try ACMEOrder(url: url, json, status: r.status)
            if !states.contains(o.status) { return o }
            guard Clock.monotonicNanos() < end else {
                throw .protocolViolation("order \(url) still \(o.status) after \(pollTimeoutMilliseconds / 1000)s")
            }
            try sleep(Self.pollDelay(r, fallback: delay))
            delay = min(delay * 2, 5_000)
        }
    }

    /// Finalizes with a DER CSR (§7.4): `{"csr": base64url(DER)}`.
    package func finalize(_ order: ACMEOrder, csr: [UInt8]) throws(ACMEError) -> ACMEOrder {
        let (r, json) = try post(order.finalize, payload: .object([("csr", .string(Base64URL.encode(csr)))]))
        guard let json else { throw .protocolViolation("finalize: empty response") }
        return try ACMEOrder(url: order.url, json, status: r.status)
    }

    /// Downloads the certificate chain (§7.4.2), `application/pem-certificate-chain`: leaf
    /// first, then the issuers.
    package func downloadCertificate(_ url: String) throws(ACMEError) -> [UInt8] {
        let (r, _) = try post(url, payload: nil, accept: "application/pem-certificate-chain")
        guard r.status == 200, !r.body.isEmpty else {
            throw .protocolViolation("certificate \(url): HTTP \(r.status), \(r.body.count) bytes")
        }
        return r.body
    }

    /// Revokes a certificate (§7.6) by its DER, signed by the account. `reason` is an RFC 5280
    /// §5.3.1 CRLReason code (0 unspecified, 1 keyCompromise, 4 superseded, 5 cessationOfOperation).
    package func revoke(certificateDER: [UInt8], reason: Int? = nil) throws(ACMEError) {
        guard let url = try directory().revokeCert else { throw .protocolViolation("the CA has no revokeCert") }
        var payload: [(String, JSONValue)] = [("certificate", .string(Base64URL.encode(certificateDER)))]
        if let reason { payload.append(("reason", .int(reason))) }
        _ = try post(url, payload: .object(payload))
    }

    // MARK: Helpers

    static func json(_ r: HTTPClientResponse, url: String) throws(ACMEError) -> JSONValue {
        do {
            return try JSONValue.parse(r.body)
        } catch {
            throw .protocolViolation("\(url) (HTTP \(r.status)): \(error)")
        }
    }

    static func failure(_ r: HTTPClientResponse, _ json: JSONValue, _ fallback: String) -> ACMEError {
        if let p = ACMEProblem(json, status: r.status) {
            return .problem(p, retryAfter: RetryAfter.seconds(r.header("retry-after"), now: Clock.realtime().seconds))
        }
        return .protocolViolation(fallback)
    }

    /// `Retry-After` in milliseconds, capped at a minute, else `fallback`.
    static func pollDelay(_ r: HTTPClientResponse, fallback: Int) -> Int {
        if let s = RetryAfter.seconds(r.header("retry-after"), now: Clock.realtime().seconds) {
            return min(max(s, 1), 60) * 1_000
        }
        return fallback
    }
}

extension Optional {
    /// Returns the value and leaves nil behind.
    fileprivate mutating func take() -> Wrapped? {
        let v = self
        self = nil
        return v
    }
}

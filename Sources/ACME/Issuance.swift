/// The challenge types Berth can solve over the sockets it already has.
package enum ACMEChallengeType: String, Sendable, CaseIterable {
    /// RFC 8555 §8.3, answered on the plain-HTTP listeners (port 80, e.g. `fd/3`).
    case http01 = "http-01"
    /// RFC 8737, answered in the TLS handshake of the HTTPS listeners (port 443, e.g. `fd/4`).
    case tlsALPN01 = "tls-alpn-01"
}

/// Where and how certificates are obtained: one ACME CA and account.
package struct ACMEIssuerSettings: Sendable, Hashable {
    /// The directory URL (`acme_ca`, `issuer acme { dir }`).
    package var directoryURL: String
    /// Account contact (`email`, `tls <email>`).
    package var email: String?
    /// PEM certificates to trust for the CA's HTTPS endpoint (`acme_ca_root`,
    /// `trusted_roots`), nil: the system store.
    package var trustedRootsPEM: [UInt8]?
    /// External Account Binding (RFC 8555 §7.3.4): key identifier and base64url MAC key.
    package var externalAccountKeyID: String?
    package var externalAccountMACKey: String?
    /// Challenge types in the order they are tried.
    package var challenges: [ACMEChallengeType]

    package init(
        directoryURL: String, email: String? = nil, trustedRootsPEM: [UInt8]? = nil,
        externalAccountKeyID: String? = nil, externalAccountMACKey: String? = nil,
        challenges: [ACMEChallengeType] = [.http01, .tlsALPN01]
    ) {
        self.directoryURL = directoryURL
        self.email = email
        self.trustedRootsPEM = trustedRootsPEM
        self.externalAccountKeyID = externalAccountKeyID
        self.externalAccountMACKey = externalAccountMACKey
        self.challenges = challenges
    }

    /// Let's Encrypt's production directory, Caddy's first default issuer.
    package static let letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

    /// The storage key of the CA: its host, plus `-port` for a non-default port
    /// (`acme-v02.api.letsencrypt.org`, `localhost-14000`).
    package var caKey: String {
        guard let u = URLParts(directoryURL) else { return ACMEStorage.safeName(directoryURL) }
        let port = u.port == (u.secure ? 443 : 80) ? "" : "-\(u.port)"
        return ACMEStorage.safeName(u.host.lowercased() + port)
    }
}

/// Something that logs what the ACME machinery does, shaped like Caddy's zap lines.
package typealias ACMELog = @Sendable (_ level: ACMELogLevel, _ message: String, _ fields: [(String, String)]) -> Void

/// Log levels of `ACMELog`.
package enum ACMELogLevel: String, Sendable {
    case info, warn, error
}

/// One certificate issuance (RFC 8555 §7.1 "Overview" steps 3–7): order, authorizations
/// through the running server's challenge responses, finalize with a CSR, download.
package struct ACMEIssuance {
    let client: ACMEClient
    let challenges: ACMEChallengeStore
    let log: ACMELog

    package init(client: ACMEClient, challenges: ACMEChallengeStore, log: @escaping ACMELog) {
        self.client = client
        self.challenges = challenges
        self.log = log
    }

    /// Obtains a certificate for `names` with a new key; returns the PEM chain and the key.
    /// Challenge types are tried in `types` order: when one fails validation, a new order is
    /// placed with the next (an order with an invalid authorization cannot recover, §7.1.6).
    package func obtain(names: [String], types: [ACMEChallengeType]) throws(ACMEError)
        -> (chainPEM: [UInt8], key: ACMEKey)
    {
        guard !types.isEmpty else { throw .configuration("every challenge type is disabled") }
        var lastError: ACMEError?
        for (i, type) in types.enumerated() {
            do {
                return try obtainOnce(names: names, type: type)
            } catch {
                guard case .validationFailed = error, i + 1 < types.count else { throw error }
                log(.warn, "challenge failed; trying the next challenge type",
                    [("identifiers", names.joined(separator: ",")), ("challenge_type", type.rawValue),
                     ("next", types[i + 1].rawValue), ("error", error.description)])
                lastError = error
            }
        }
        throw lastError ?? .cancelled
    }

    private func obtainOnce(names: [String], type: ACMEChallengeType) throws(ACMEError)
        -> (chainPEM: [UInt8], key: ACMEKey)
    {
        var order = try client.newOrder(names)
        log(.info, "trying to solve challenge",
            [("identifiers", names.joined(separator: ",")), ("challenge_type", type.rawValue), ("order", order.url)])
        for url in order.authorizations {
            try authorize(url, type: type)
        }
        order = try client.waitForOrder(order.url, whileIn: ["pending"])
        guard order.status == "ready" else { throw orderFailure(order, "before finalize") }
        let key: ACMEKey
        let csr: [UInt8]
        do {
            key = try ACMEKey.generate()
            csr = try key.certificateSigningRequest(names: names)
        } catch {
            throw error.acme
        }
        order = try client.finalize(order, csr: csr)
        if order.status == "processing" || order.status == "ready" {
            order = try client.waitForOrder(order.url, whileIn: ["processing", "ready"])
        }
        guard order.status == "valid", let certURL = order.certificate else { throw orderFailure(order, "after finalize") }
        let chain = try client.downloadCertificate(certURL)
        return (chain, key)
    }

    private func orderFailure(_ order: ACMEOrder, _ when: String) -> ACMEError {
        if let p = order.error { return .problem(p, retryAfter: nil) }
        return .protocolViolation("order \(order.url) is \(order.status) \(when)")
    }

    /// Solves one authorization (§7.5): present the response, tell the CA, poll, clean up.
    private func authorize(_ url: String, type: ACMEChallengeType) throws(ACMEError) {
        let authz = try client.authorization(url)
        if authz.status == "valid" { return }  // reused authorization (§7.1.4)
        guard authz.status == "pending" else {
            throw .validationFailed(identifier: authz.identifier.value, challenge: type.rawValue, problem: authz.failure?.problem)
        }
        guard let challenge = authz.challenges.first(where: { $0.type == type.rawValue }) else {
            throw .validationFailed(
                identifier: authz.identifier.value, challenge: type.rawValue,
                problem: ACMEProblem(type: "berth:noChallenge",
                                     detail: "the CA offers \(authz.challenges.map(\.type).joined(separator: ", "))",
                                     status: 0))
        }
        let domain = authz.identifier.value
        let keyAuthorization = JWS.keyAuthorization(token: challenge.token, accountKey: client.accountKey)
        switch type {
        case .http01:
            challenges.presentHTTP01(domain: domain, token: challenge.token, keyAuthorization: keyAuthorization)
        case .tlsALPN01:
            try challenges.presentTLSALPN01(domain: domain, keyAuthorization: keyAuthorization)
        }
        defer {
            switch type {
            case .http01: challenges.removeHTTP01(token: challenge.token)
            case .tlsALPN01: challenges.removeTLSALPN01(domain: domain)
            }
        }
        try client.respond(to: challenge)
        let done = try client.waitForAuthorization(url)
        if done.status == "valid" {
            log(.info, "authorization finalized", [("identifier", domain), ("authz_status", "valid")])
            return
        }
        let problem = done.challenges.first(where: { $0.type == type.rawValue })?.error ?? done.failure?.problem
        throw .validationFailed(identifier: domain, challenge: type.rawValue, problem: problem)
    }
}

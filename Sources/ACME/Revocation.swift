import IOCore

extension CertificateManager {
    /// Revokes the stored certificate of `subject` with its CA (RFC 8555 §7.6, signed by the
    /// account) and marks it `"revoked": true` in storage, so every Berth instance using this
    /// data directory replaces it at its next check (`berth acme revoke`, then SIGUSR1 or
    /// `berth reload --force` to make the running server look now). Returns the revoked certificate.
    ///
    /// `reason` is an RFC 5280 §5.3.1 CRLReason (nil: unspecified). A certificate the CA
    /// reports as already revoked (`alreadyRevoked`) is only marked.
    @discardableResult
    package func revokeStored(_ subject: ManagedCertificate, reason: Int? = nil) throws(ACMEError) -> StoredCertificate {
        let ca = subject.issuer.caKey
        guard let stored = storage.loadCertificate(ca: ca, name: subject.name) else {
            throw .storage("no stored certificate for \(subject.name) from \(subject.issuer.directoryURL) under \(storage.root)")
        }
        guard let der = PEMBytes.firstCertificateDER(stored.chainPEM) else {
            throw .storage("the stored certificate for \(subject.name) is not PEM")
        }
        let client = try self.client(for: subject.issuer)
        do {
            try client.revoke(certificateDER: der, reason: reason)
            log(.info, "certificate revoked", [("identifier", subject.name), ("issuer", subject.issuer.directoryURL)])
        } catch {
            guard error.problem?.shortType == "alreadyRevoked" else { throw error }
            log(.warn, "certificate was already revoked", [("identifier", subject.name)])
        }
        let now = Clock.realtime().seconds
        try storage.updateMetadata(ca: ca, name: subject.name) { meta in
            var members = meta.objectValue ?? []
            members.removeAll { $0.0 == "revoked" || $0.0 == "revoked_at" }
            members.append(("revoked", .bool(true)))
            members.append(("revoked_at", .int(now)))
            return .object(members)
        }
        return stored
    }
}

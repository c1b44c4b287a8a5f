#if canImport(Glibc)
import JSON
import Glibc
#endif
import IOCore
import TLS

/// A certificate Berth keeps for one name from one CA (Caddy obtains one certificate per name).
package struct ManagedCertificate: Sendable, Hashable, CustomStringConvertible {
    package var name: String
    package var issuer: ACMEIssuerSettings

    package init(name: String, issuer: ACMEIssuerSettings) {
        self.name = name.lowercased()
        self.issuer = issuer
    }

    package var description: String { name }
}

/// Obtains, stores, renews and (on request) revokes ACME certificates on one background
/// thread, never on an event loop.
///
/// - Start-up does not wait: `certificate(for:)` answers at once from memory or storage, and
///   the thread obtains what is missing; each new certificate goes to `onCertificate` (Berth's
///   server hops to its control thread there and hot-swaps it into the TLS contexts).
/// - Renewal when less than a third of the lifetime remains (certmagic's default window);
///   until a renewal succeeds the old certificate keeps being served.
/// - Failures are logged with the CA's problem document and retried with backoff (1 min,
///   2 min, 5 min … up to a day; longer when the CA's `Retry-After` says so).
/// - Storage is re-read at every check, so a certificate another instance obtained (or one
///   marked revoked by `berth acme revoke`) is noticed without talking to the CA.
package final class CertificateManager: @unchecked Sendable {
    /// Where certificates and accounts live.
    package let storage: ACMEStorage
    /// The challenge responses the server consults.
    package let challenges: ACMEChallengeStore
    let log: ACMELog
    let onCertificate: @Sendable (ManagedCertificate, TLSCertificate) -> Void

    /// Seconds between retries after consecutive failures (the last value repeats).
    package var retrySchedule = [60, 120, 300, 600, 1_200, 1_800, 3_600, 7_200, 14_400, 21_600, 43_200, 86_400]
    /// Longest sleep between checks (storage changes by other instances are seen this often).
    package var maintenanceIntervalSeconds = 600
    /// Transport timeouts of ACME requests.
    package var requestTimeoutMilliseconds = 30_000

    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var wanted: [ManagedCertificate] = []
    private var states: [ManagedCertificate: SubjectState] = [:]
    private var stopping = false
    private var woken = false
    private var started = false
    /// Worker thread only.
    private var clients: [ACMEIssuerSettings: ACMEClient] = [:]

    struct SubjectState {
        var certificate: TLSCertificate?
        var nextAttempt = 0
        var failures = 0
        var mustReplace = false
    }

    package init(
        storage: ACMEStorage, challenges: ACMEChallengeStore, log: @escaping ACMELog,
        onCertificate: @escaping @Sendable (ManagedCertificate, TLSCertificate) -> Void
    ) {
        self.storage = storage
        self.challenges = challenges
        self.log = log
        self.onCertificate = onCertificate
        pthread_mutex_init(&mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(&cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    private func locked<T>(_ body: () throws(ACMEError) -> T) throws(ACMEError) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    // MARK: API (any thread)

    /// Replaces the set of certificates to keep (each config load), starting the thread on
    /// first use and waking it so new names are looked at now.
    package func setSubjects(_ subjects: [ManagedCertificate]) {
        var seen = Set<ManagedCertificate>()
        let unique = subjects.filter { seen.insert($0).inserted }
        let start = locked { () -> Bool in
            wanted = unique
            woken = true
            pthread_cond_signal(&cond)
            if started || stopping || unique.isEmpty { return false }
            started = true
            return true
        }
        if start { startThread() }
    }

    /// The certificate to serve now for `subject`: the one in memory, else a usable one from
    /// storage (not expired, not marked revoked), else nil (the thread will obtain it).
    package func certificate(for subject: ManagedCertificate, now: Int = Clock.realtime().seconds) -> TLSCertificate? {
        if let c = locked({ states[subject]?.certificate }), !c.isExpired(now: now) { return c }
        guard let stored = storage.loadCertificate(ca: subject.issuer.caKey, name: subject.name),
            !stored.revoked, !stored.certificate.isExpired(now: now)
        else { return nil }
        locked {
            var st = states[subject] ?? SubjectState()
            if st.certificate == nil { st.certificate = stored.certificate }
            states[subject] = st
        }
        return stored.certificate
    }

    /// Stops the thread (an ACME exchange in progress is abandoned at its next wait).
    package func stop() {
        locked {
            stopping = true
            pthread_cond_broadcast(&cond)
        }
    }

    // MARK: Thread

    private func startThread() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            let manager = Unmanaged<CertificateManager>.fromOpaque(arg).takeRetainedValue()
            manager.run()
            return nil
        }, box)
        if rc == 0 {
            pthread_detach(tid)
        } else {
            Unmanaged<CertificateManager>.fromOpaque(box).release()
            log(.error, "could not start the ACME thread", [("error", IOError.describe(rc))])
        }
    }

    private func run() {
        while true {
            let snapshot: [ManagedCertificate]? = locked {
                woken = false
                return stopping ? nil : wanted
            }
            guard let snapshot else { return }
            let now = Clock.realtime().seconds
            var next = now + maintenanceIntervalSeconds
            for subject in snapshot {
                if locked({ stopping }) { return }
                next = min(next, maintain(subject))
            }
            waitUntil(realtime: next)
        }
    }

    /// Sleeps until `realtime` seconds, a `setSubjects`, or `stop`.
    private func waitUntil(realtime: Int) {
        let delay = max(0, realtime - Clock.realtime().seconds)
        let deadline = Clock.monotonicNanos() + UInt64(delay) * 1_000_000_000
        locked {
            while !stopping && !woken {
                let now = Clock.monotonicNanos()
                if now >= deadline { break }
                var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                _ = pthread_cond_timedwait(&cond, &mutex, &ts)
            }
        }
    }

    /// Cancellable sleep for the ACME client's polls and backoffs.
    func sleep(milliseconds: Int) throws(ACMEError) {
        let deadline = Clock.monotonicNanos() + UInt64(max(0, milliseconds)) * 1_000_000
        try locked { () throws(ACMEError) in
            while !stopping {
                if Clock.monotonicNanos() >= deadline { return }
                var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                _ = pthread_cond_timedwait(&cond, &mutex, &ts)
            }
            throw ACMEError.cancelled
        }
    }

    /// Looks at one subject; returns when to look again (Unix seconds).
    private func maintain(_ subject: ManagedCertificate) -> Int {
        let now = Clock.realtime().seconds
        var st = locked { states[subject] ?? SubjectState() }
        defer { locked { states[subject] = st } }
        // What storage holds may be newer (another instance) or revoked (`berth acme revoke`).
        if let stored = storage.loadCertificate(ca: subject.issuer.caKey, name: subject.name) {
            let same = st.certificate.map { $0.leafPEM() == stored.certificate.leafPEM() } ?? false
            if stored.revoked {
                if same || st.certificate == nil {
                    if !st.mustReplace {
                        log(.warn, "stored certificate is marked revoked; obtaining a new one",
                            [("identifier", subject.name), ("not_after", String(stored.certificate.notAfter))])
                        st.nextAttempt = 0
                    }
                    st.mustReplace = true
                }
            } else if !same, !stored.certificate.isExpired(now: now),
                st.certificate.map({ stored.certificate.notAfter >= $0.notAfter }) ?? true || st.mustReplace
            {
                let first = st.certificate == nil
                st.certificate = stored.certificate
                st.mustReplace = false
                st.failures = 0
                log(.info, first ? "loaded certificate from storage" : "certificate changed in storage; using it",
                    [("identifier", subject.name), ("not_after", String(stored.certificate.notAfter))])
                onCertificate(subject, stored.certificate)
            }
        }
        if let c = st.certificate, !st.mustReplace, !c.needsRenewal(now: now) {
            return Self.renewalTime(c)
        }
        if now < st.nextAttempt { return st.nextAttempt }
        let renewing = st.certificate != nil && !st.mustReplace
        log(.info, renewing ? "renewing certificate" : "obtaining certificate",
            [("identifier", subject.name), ("issuer", subject.issuer.directoryURL)])
        do {
            let cert = try obtainLocked(subject, replacing: st.certificate, renewal: renewing)
            st.certificate = cert
            st.mustReplace = false
            st.failures = 0
            st.nextAttempt = 0
            onCertificate(subject, cert)
            return Self.renewalTime(cert)
        } catch {
            if case .cancelled = error { return now }
            let delay = max(retrySchedule[min(st.failures, retrySchedule.count - 1)], error.retryAfter ?? 0)
            st.failures += 1
            st.nextAttempt = now + delay
            var fields: [(String, String)] = [
                ("identifier", subject.name), ("issuer", subject.issuer.directoryURL), ("error", error.description),
                ("attempt", String(st.failures)), ("retrying_in", "\(delay)s"),
            ]
            if let p = error.problem { fields.append(("problem_type", p.type)) }
            if let p = error.problem, p.isRateLimited { fields.append(("rate_limited", "true")) }
            if st.certificate != nil { fields.append(("serving", "previous certificate until renewal succeeds")) }
            log(.error, renewing ? "could not renew certificate" : "could not get certificate from issuer", fields)
            return st.nextAttempt
        }
    }

    /// When `c` enters its renewal window (a third of its lifetime left).
    static func renewalTime(_ c: TLSCertificate) -> Int {
        c.notAfter - (c.notAfter - c.notBefore) / 3 + 1
    }

    /// Obtains under the per-name storage lock; a certificate another instance stored
    /// meanwhile is used instead.
    private func obtainLocked(_ subject: ManagedCertificate, replacing old: TLSCertificate?, renewal: Bool)
        throws(ACMEError) -> TLSCertificate
    {
        let ca = subject.issuer.caKey
        return try storage.withLock("\(ca)-\(subject.name)") { () throws(ACMEError) -> TLSCertificate in
            let now = Clock.realtime().seconds
            if let stored = storage.loadCertificate(ca: ca, name: subject.name), !stored.revoked,
                !stored.certificate.needsRenewal(now: now),
                old.map({ stored.certificate.leafPEM() != $0.leafPEM() }) ?? true
            {
                log(.info, "another instance obtained the certificate; using it", [("identifier", subject.name)])
                return stored.certificate
            }
            let (chain, key) = try obtainWithAccount(subject)
            let cert: TLSCertificate
            do {
                cert = try TLSCertificate(certificatePEM: chain, keyPEM: key.pem())
            } catch {
                throw .protocolViolation("the CA's certificate for \(subject.name) does not load: \(error)")
            }
            let meta = JSONValue.object([
                ("names", .array([.string(subject.name)])), ("issuer", .string(subject.issuer.directoryURL)),
                ("not_before", .int(cert.notBefore)), ("not_after", .int(cert.notAfter)),
                ("obtained_at", .int(now)),
            ])
            try storage.saveCertificate(ca: ca, name: subject.name, chainPEM: chain, keyPEM: key.pem(), metadata: meta)
            log(.info, renewal ? "certificate renewed successfully" : "certificate obtained successfully",
                [("identifier", subject.name), ("issuer", subject.issuer.directoryURL),
                 ("not_after", String(cert.notAfter))])
            return cert
        }
    }

    /// Runs the issuance with the account, re-registering once if the CA forgot it.
    private func obtainWithAccount(_ subject: ManagedCertificate) throws(ACMEError) -> (chainPEM: [UInt8], key: ACMEKey) {
        let client = try self.client(for: subject.issuer)
        let issuance = ACMEIssuance(client: client, challenges: challenges, log: log)
        do {
            return try issuance.obtain(names: [subject.name], types: subject.issuer.challenges)
        } catch {
            guard error.problem?.shortType == "accountDoesNotExist" else { throw error }
            log(.warn, "the CA does not know the stored account; registering again", [("issuer", subject.issuer.directoryURL)])
            try register(client, subject.issuer)
            return try issuance.obtain(names: [subject.name], types: subject.issuer.challenges)
        }
    }

    // MARK: Accounts

    /// The client for an issuer: account key from storage (or new), registered on first use.
    func client(for issuer: ACMEIssuerSettings) throws(ACMEError) -> ACMEClient {
        if let c = clients[issuer] { return c }
        let c = try makeClient(issuer)
        if c.accountURL == nil { try register(c, issuer) }
        clients[issuer] = c
        return c
    }

    func makeClient(_ issuer: ACMEIssuerSettings) throws(ACMEError) -> ACMEClient {
        let ca = issuer.caKey
        let transport = try ACMEHTTPClient(
            trustRoots: issuer.trustedRootsPEM.map { .pem($0) } ?? .system, timeoutMilliseconds: requestTimeoutMilliseconds)
        let account = try storage.withLock("\(ca)-account-\(issuer.email ?? "default")") {
            () throws(ACMEError) -> (key: ACMEKey, url: String?) in
            if let a = storage.loadAccount(ca: ca, email: issuer.email) { return a }
            let key: ACMEKey
            do throws(ACMECryptoError) { key = try ACMEKey.generate() } catch { throw error.acme }
            try storage.saveAccount(ca: ca, email: issuer.email, key: key, url: nil)
            return (key, nil)
        }
        return ACMEClient(
            directoryURL: issuer.directoryURL, transport: transport, accountKey: account.key, accountURL: account.url,
            sleep: { [unowned self] (ms: Int) throws(ACMEError) in try self.sleep(milliseconds: ms) })
    }

    func register(_ client: ACMEClient, _ issuer: ACMEIssuerSettings) throws(ACMEError) {
        var eab: (keyID: String, macKey: [UInt8])?
        if let id = issuer.externalAccountKeyID, let mac = issuer.externalAccountMACKey {
            guard let k = Base64URL.decode(mac), !k.isEmpty else {
                throw .configuration("the EAB MAC key is not base64url")
            }
            eab = (id, k)
        }
        let url = try client.registerAccount(email: issuer.email, externalAccount: eab)
        try storage.saveAccount(ca: issuer.caKey, email: issuer.email, key: client.accountKey, url: url)
        log(.info, "ACME account ready", [("issuer", issuer.directoryURL), ("account", url),
                                          ("email", issuer.email ?? "")])
    }
}

#if canImport(Glibc)
import Glibc
#endif
import ACME
import Config
import EventLoop
import HTTPCore
import IOCore
import TLS

/// Automatic HTTPS in the running server: the glue between the config (which names get ACME
/// certificates, from which CA), the ACME module's certificate manager (one background
/// thread), and the listeners (challenge answers, certificate hot swap).
///
/// - The CA: the site's `tls` / `issuer acme { dir }`, else the global `acme_ca`, else the
///   environment's `BERTH_ACME_CA` (with `BERTH_ACME_CA_ROOT`, a PEM file to trust for it —
///   a Berth extension so a config such as the seed examples can be pointed at a test CA
///   like Pebble without editing it), else Let's Encrypt.
/// - Start-up never waits for a CA: a name whose certificate is in storage serves it at once;
///   otherwise the name is served once the certificate arrives. Until then its SNI is treated
///   like any unknown name (`CertificateStore`): the handshake is refused when the server
///   has no other certificate (what Caddy does), else the server's default certificate is
///   presented. The rest of the config serves normally meanwhile.
/// - Results are applied on the control thread (`CertificateSource.update`); connections
///   already established keep the certificate they negotiated.
/// - Challenges are answered on the sockets Berth already has; it never binds a port.
package enum ACMERuntime {
    /// Every challenge response in flight (consulted by all listeners).
    package static let challenges = ACMEChallengeStore()

    nonisolated(unsafe) private static var manager: CertificateManager?
    nonisolated(unsafe) private static var warnedStorage = false
    /// Control thread: which sources serve each managed certificate, for the current runtime.
    nonisolated(unsafe) private static var targets: [ManagedCertificate: [CertificateSource]] = [:]
    nonisolated(unsafe) private static var control: EventLoop?
    private static let lock = Mutex()

    /// The process's certificate manager (created on first use; its thread starts with the
    /// first `activate` that has names to manage).
    package static func certificateManager() -> CertificateManager {
        let root = DataDirectory.root
        lock.lock()
        defer { lock.unlock() }
        if let m = manager {
            if m.storage.root != root && !warnedStorage {
                warnedStorage = true
                Log.warn("tls", "storage moved; ACME certificates keep using the old directory until Berth restarts",
                         [("old", .string(m.storage.root)), ("new", .string(root))])
            }
            return m
        }
        let m = CertificateManager(
            storage: ACMEStorage(root: DataDirectory.root), challenges: challenges,
            log: { level, message, fields in
                Log.write(level.rawValue, "tls.acme", message, fields.map { ($0.0, Log.Value.string($0.1)) })
            },
            onCertificate: { subject, certificate in
                // Background thread → control thread.
                guard let loop = controlLoop() else { return }
                loop.execute { install(subject, certificate) }
            })
        manager = m
        return m
    }

    private static func controlLoop() -> EventLoop? {
        lock.lock()
        defer { lock.unlock() }
        return control
    }

    // MARK: Config → managed certificates

    /// The ACME settings for a site's issuer spec, reading trust-root files.
    package static func settings(_ spec: ACMEIssuerSpec, environment: [String: String] = Launcher.environment())
        throws(ConfigError) -> ACMEIssuerSettings
    {
        var directory = spec.directory
        var roots = spec.trustedRootFiles
        if directory == nil, let env = environment["BERTH_ACME_CA"], !env.isEmpty {
            directory = env
            if roots.isEmpty, let r = environment["BERTH_ACME_CA_ROOT"], !r.isEmpty { roots = [r] }
        }
        let dir = directory ?? ACMEIssuerSettings.letsEncrypt
        guard URLParts(dir) != nil else { throw ConfigError("ACME CA directory '\(dir)' is not an http(s) URL") }
        var pem: [UInt8]?
        for f in roots {
            do {
                pem = (pem ?? []) + (try FileIO.readAll(f, limit: 1 << 20)) + [0x0A]
            } catch {
                throw ConfigError("reading the ACME CA's trusted root \(f): \(error)")
            }
        }
        var types: [ACMEChallengeType] = []
        if !spec.disableHTTPChallenge { types.append(.http01) }
        if !spec.disableTLSALPNChallenge { types.append(.tlsALPN01) }
        if types.isEmpty {
            throw ConfigError("ACME for \(dir): both disable_http_challenge and disable_tlsalpn_challenge are set; Berth has no other challenge type")
        }
        return ACMEIssuerSettings(
            directoryURL: dir, email: spec.email, trustedRootsPEM: pem, externalAccountKeyID: spec.eabKeyID,
            externalAccountMACKey: spec.eabMACKey, challenges: types)
    }

    /// The managed certificates of one `CertificateSpec` and what can be served for them now
    /// (memory or storage; never the network).
    package static func prepare(names: [String], issuer spec: ACMEIssuerSpec) throws(ConfigError)
        -> (subjects: [ManagedCertificate], ready: [TLSCertificate])
    {
        let s = try settings(spec)
        let subjects = names.map { ManagedCertificate(name: $0, issuer: s) }
        let m = certificateManager()
        return (subjects, subjects.compactMap { m.certificate(for: $0) })
    }

    // MARK: Runtime lifecycle (control thread)

    /// Makes `runtime`'s managed certificates current: records which sources to update and
    /// hands the names to the manager. Called after a runtime is applied (start and reloads).
    package static func activate(_ runtime: ServerRuntime, control loop: EventLoop) {
        var t: [ManagedCertificate: [CertificateSource]] = [:]
        for s in runtime.servers {
            guard let source = s.certificates else { continue }
            for subject in s.acmeSubjects { t[subject, default: []].append(source) }
        }
        lock.lock()
        control = loop
        targets = t
        let idle = t.isEmpty && manager == nil
        lock.unlock()
        if idle { return }
        let m = certificateManager()
        if !t.isEmpty {
            Log.info("tls.acme", "enabling automatic TLS certificate management",
                     [("domains", .strings(t.keys.map(\.name).sorted())),
                      ("issuers", .strings(Array(Set(t.keys.map(\.issuer.directoryURL))).sorted()))])
        }
        // A certificate that arrived between the build and now.
        for (subject, _) in t {
            if let c = m.certificate(for: subject) { install(subject, c) }
        }
        m.setSubjects(Array(t.keys).sorted { $0.name < $1.name })
    }

    /// Swaps `certificate` into every source that serves `subject` (control thread).
    static func install(_ subject: ManagedCertificate, _ certificate: TLSCertificate) {
        lock.lock()
        let sources = targets[subject] ?? []
        lock.unlock()
        for source in sources where source.current.match(subject.name) !== certificate {
            source.update { $0.adding(certificate) }
        }
    }

    /// Stops the ACME thread (shutdown).
    package static func stop() {
        lock.lock()
        let m = manager
        lock.unlock()
        m?.stop()
    }

    // MARK: Challenges on the request path

    /// HTTP-01 (RFC 8555 §8.3): answers `GET /.well-known/acme-challenge/<token>` for a token
    /// being solved, before any site route; nil for every other request (a byte compare of the
    /// path prefix, nothing else, on the hot path).
    @inline(__always)
    package static func answerHTTP01(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult? {
        let isChallenge = request.withLineBytes(request.pathRange) { p -> Bool in
            // "/." is rare in real paths: one byte rejects almost every request.
            p.count > 28 && p[1] == UInt8(ascii: ".") && p.starts(with: prefix)
        }
        guard isChallenge else { return nil }
        return answerHTTP01Slow(request, response)
    }

    /// `/.well-known/acme-challenge/` (28 bytes).
    private static let prefix = Array(ACMEChallengeStore.http01PathPrefix.utf8)

    private static func answerHTTP01Slow(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult? {
        guard request.method == .GET || request.method == .HEAD,
            let keyAuthorization = challenges.http01Response(path: request.pathString, host: request.hostString)
        else { return nil }
        response.status = 200
        response.fields.append(name: "Content-Type", value: "text/plain")
        Log.info("tls.acme", "served key authentication", [("identifier", .string(request.hostString)),
                                                           ("challenge", .string("http-01")),
                                                           ("remote", .string(request.connection.remote?.ipString ?? ""))])
        Array(keyAuthorization.utf8).withUnsafeBytes { response.send(body: $0) }
        return .done
    }
}

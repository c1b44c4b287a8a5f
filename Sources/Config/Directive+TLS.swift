import Caddyfile

/// Where a site's certificate comes from.
package enum CertificateSourceSpec: Sendable, Equatable {
    /// `tls cert.pem key.pem`.
    case files(certificate: String, key: String)
    /// `tls internal` / `local_certs` / a non-public name: Berth's local CA.
    case internalCA
    /// A public name with no other source: automatic HTTPS from an ACME CA (Sources/ACME).
    case acme(ACMEIssuerSpec)
}

/// A site's `tls` directive.
package struct SiteTLS: Sendable, Equatable {
    package var source: CertificateSourceSpec?
    /// `tls <email>` (the ACME account contact).
    package var email: String?
    /// `issuer acme { … }`, `ca`, `ca_root`, `eab`: this site's ACME settings (over the
    /// global ones).
    package var issuer: ACMEIssuerSpec?
    /// `protocols <min> [<max>]`.
    package var minimumVersion: String?
    package var maximumVersion: String?
    /// `alpn` override.
    package var alpn: [String]?
    /// `ciphers`: OpenSSL names of the TLS 1.2 suites kept (nil: Berth's default set; empty:
    /// only TLS 1.3 suites were named, so TLS 1.2 has none, as in Go).
    package var ciphers: [String]?
    /// `curves`: OpenSSL group names in order.
    package var curves: [String]?
    /// `client_auth { … }`.
    package var clientAuth: ClientAuthSpec?
    package var location: SourceLocation
}

/// `tls { client_auth { … } }` as written (certificate files are read when the runtime is
/// built, so a reload picks up a changed CA bundle).
package struct ClientAuthSpec: Sendable, Equatable {
    /// `mode`: request, require, verify_if_given, require_and_verify (nil: Caddy's default).
    package var mode: String?
    /// `trusted_ca_cert <base64 DER>`.
    package var trustedCACerts: [String] = []
    /// `trusted_ca_cert_file <pem>`.
    package var trustedCACertFiles: [String] = []
    /// `trusted_leaf_cert <base64 DER>`.
    package var trustedLeafCerts: [String] = []
    /// `trusted_leaf_cert_file <pem>`.
    package var trustedLeafCertFiles: [String] = []
    package var location: SourceLocation
}

/// One site's client-auth policy on a server: the site's host names and its spec.
package struct ClientAuthPolicySpec: Sendable, Equatable {
    package var names: [String]
    package var spec: ClientAuthSpec
}

/// The certificates one server presents: names and where their certificate comes from.
package struct CertificateSpec: Sendable, Equatable {
    package var names: [String]
    package var source: CertificateSourceSpec
}

/// A server's TLS settings (present when its listeners serve HTTPS).
package struct ServerTLSConfig: Sendable, Equatable {
    package var certificates: [CertificateSpec]
    package var defaultSNI: String?
    package var minimumVersion: String?
    package var maximumVersion: String?
    /// `tls { ciphers }` (OpenSSL names of TLS 1.2 suites), for the whole listener.
    package var ciphers: [String]? = nil
    /// `tls { curves }` (OpenSSL group names), for the whole listener.
    package var curves: [String]? = nil
    /// `tls { alpn }`: ALPN names in preference order, for the whole listener.
    package var alpn: [String]? = nil
    /// Client-auth policies by site names, in site order.
    package var clientAuth: [ClientAuthPolicySpec] = []
}

extension DirectiveParsers {
    /// `tls internal | <email> | <cert> <key> [{ protocols, ciphers, curves, alpn, issuer,
    /// client_auth }]` (caddy-behavior §15).
    static func tls(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        var t = SiteTLS(location: SourceLocation(file: d.file, line: d.line))
        var args: [String] = []
        while d.nextArg() { args.append(d.val) }
        switch args.count {
        case 0: break
        case 1:
            if args[0] == "internal" {
                t.source = .internalCA
            } else if args[0].contains("@") {
                t.email = args[0]
            } else {
                throw d.err("single argument must either be 'internal', 'force_automate', or an email address")
            }
        case 2:
            t.source = .files(certificate: args[0], key: args[1])
        default:
            throw d.argErr()
        }
        // Caddy's `for nesting := d.Nesting(); d.NextBlock(nesting);` (a fixed 1 here stopped
        // after the first subdirective, silently dropping the rest).
        let blockNesting = d.nesting
        while d.nextBlock(blockNesting) {
            switch d.val {
            case "protocols":
                guard d.nextArg() else { throw d.argErr() }
                t.minimumVersion = try tlsVersion(d.val, &d)
                if d.nextArg() { t.maximumVersion = try tlsVersion(d.val, &d) }
            case "alpn":
                var a: [String] = []
                while d.nextArg() { a.append(d.val) }
                if a.isEmpty { throw d.argErr() }
                t.alpn = a
            case "issuer":
                guard d.nextArg() else { throw d.argErr() }
                if d.val == "internal" {
                    t.source = .internalCA
                    let inner = d.nesting
                    while d.nextBlock(inner) {}
                } else if d.val == "acme" {
                    var spec = t.issuer ?? ACMEIssuerSpec()
                    try acmeIssuer(&d, into: &spec)
                    t.issuer = spec
                } else {
                    throw d.err("tls issuer '\(d.val)' is not supported by this Berth build yet (use acme, internal or certificate files)")
                }
            case "ca", "ca_root":
                // Caddy: shorthands for the ACME issuer's `dir` and `trusted_roots`.
                let sub = d.val
                guard d.nextArg() else { throw d.argErr() }
                var spec = t.issuer ?? ACMEIssuerSpec()
                if sub == "ca" { spec.directory = d.val } else { spec.trustedRootFiles.append(d.val) }
                t.issuer = spec
            case "eab":
                guard d.nextArg() else { throw d.argErr() }
                var spec = t.issuer ?? ACMEIssuerSpec()
                spec.eabKeyID = d.val
                guard d.nextArg() else { throw d.argErr() }
                spec.eabMACKey = d.val
                t.issuer = spec
            case "ciphers":
                var names: [String] = []
                var any = false
                while d.nextArg() {
                    any = true
                    if let n = try TLSNames.cipher(d.val, &d) { names.append(n) }
                }
                if !any { throw d.argErr() }
                t.ciphers = names
            case "curves":
                var groups: [String] = []
                while d.nextArg() { groups.append(try TLSNames.curve(d.val, &d)) }
                if groups.isEmpty { throw d.argErr() }
                t.curves = groups
            case "client_auth":
                t.clientAuth = try clientAuth(&d)
            case "load", "dns", "on_demand", "key_type", "resolvers", "propagation_delay", "propagation_timeout", "dns_ttl", "insecure_secrets_log":
                throw d.err("tls \(d.val) is not supported by this Berth build yet")
            default:
                throw d.err("unknown subdirective: \(d.val)")
            }
        }
        site.tls = t
    }

    /// `client_auth { mode, trusted_ca_cert, trusted_ca_cert_file, trusted_leaf_cert,
    /// trusted_leaf_cert_file }` (Caddy's `ClientAuthentication.UnmarshalCaddyfile`).
    static func clientAuth(_ d: inout Dispenser) throws(CaddyfileError) -> ClientAuthSpec {
        var spec = ClientAuthSpec(location: SourceLocation(file: d.file, line: d.line))
        while d.nextArg() {}  // Caddy ignores tokens on the `client_auth` line
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            let sub = d.val
            switch sub {
            case "mode":
                guard d.nextArg() else { throw d.argErr() }
                guard TLSNames.clientAuthModes.contains(d.val) else {
                    throw d.err("client auth mode not recognized: \(d.val) (use request, require, verify_if_given or require_and_verify)")
                }
                spec.mode = d.val
                if d.nextArg() { throw d.argErr() }
            case "trusted_ca_cert", "trusted_ca_cert_file", "trusted_leaf_cert", "trusted_leaf_cert_file":
                guard d.nextArg() else { throw d.argErr() }
                switch sub {
                case "trusted_ca_cert": spec.trustedCACerts.append(d.val)
                case "trusted_ca_cert_file": spec.trustedCACertFiles.append(d.val)
                case "trusted_leaf_cert": spec.trustedLeafCerts.append(d.val)
                default: spec.trustedLeafCertFiles.append(d.val)
                }
            case "trust_pool", "verifier":
                throw d.err("client_auth \(sub) is not supported by this Berth build yet (use trusted_ca_cert_file or trusted_leaf_cert_file)")
            default:
                throw d.err("unknown subdirective for client_auth: \(sub)")
            }
        }
        return spec
    }

    static func tlsVersion(_ v: String, _ d: inout Dispenser) throws(CaddyfileError) -> String {
        switch v {
        case "tls1.2", "tls1.3": return v
        case "tls1.0", "tls1.1": throw d.err("\(v) is not supported by Berth: TLS 1.2 is the minimum")
        default: throw d.err("wrong protocol name or protocol not supported: '\(v)'")
        }
    }
}

/// Caddy's TLS names (Go's `crypto/tls`) and what Berth maps them to in OpenSSL.
package enum TLSNames {
    package static let clientAuthModes: Set<String> = ["request", "require", "verify_if_given", "require_and_verify"]

    /// Go's TLS 1.2 AEAD + ECDHE suites → OpenSSL names (Berth's whole TLS 1.2 set).
    package static let tls12Ciphers: [(caddy: String, openSSL: String)] = [
        ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
        ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"),
        ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
        ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
        ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    ]
    /// TLS 1.3 suites: accepted by Caddy's parser, but fixed in Go (and in Berth).
    static let tls13Ciphers: Set<String> = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
    /// Go's other suite names (Caddy accepts the CBC ones; Berth refuses all of them).
    static let refusedCiphers: [String: String] = [
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "CBC mode", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "CBC mode",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "CBC mode", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "CBC mode",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "CBC mode", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "CBC mode",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "3DES in CBC mode", "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "RC4",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "RC4",
        "TLS_RSA_WITH_AES_128_GCM_SHA256": "RSA key exchange, no forward secrecy",
        "TLS_RSA_WITH_AES_256_GCM_SHA384": "RSA key exchange, no forward secrecy",
        "TLS_RSA_WITH_AES_128_CBC_SHA": "RSA key exchange and CBC mode", "TLS_RSA_WITH_AES_256_CBC_SHA": "RSA key exchange and CBC mode",
        "TLS_RSA_WITH_AES_128_CBC_SHA256": "RSA key exchange and CBC mode", "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "RSA key exchange and 3DES",
        "TLS_RSA_WITH_RC4_128_SHA": "RSA key exchange and RC4",
    ]

    /// The OpenSSL name for a Caddy TLS 1.2 suite; nil for a TLS 1.3 suite (fixed); an error
    /// naming why for anything outside Berth's set.
    static func cipher(_ name: String, _ d: inout Dispenser) throws(CaddyfileError) -> String? {
        if let m = tls12Ciphers.first(where: { $0.caddy == name }) { return m.openSSL }
        if tls13Ciphers.contains(name) { return nil }
        let allowed = tls12Ciphers.map(\.caddy).joined(separator: ", ")
        if let why = refusedCiphers[name] {
            throw d.err("cipher suite '\(name)' is not allowed by Berth (\(why)); allowed: \(allowed)")
        }
        throw d.err("wrong cipher suite name or cipher suite not supported: '\(name)' (Berth allows \(allowed))")
    }

    /// Caddy curve names → OpenSSL group names.
    package static let curves: [(caddy: String, openSSL: String)] = [
        ("x25519", "X25519"), ("secp256r1", "P-256"), ("secp384r1", "P-384"), ("secp521r1", "P-521"),
    ]

    static func curve(_ name: String, _ d: inout Dispenser) throws(CaddyfileError) -> String {
        if let m = curves.first(where: { $0.caddy == name }) { return m.openSSL }
        if name == "x25519mlkem768" {
            throw d.err("curve 'x25519mlkem768' is not available with this system's OpenSSL 3.0 (no ML-KEM); use x25519, secp256r1, secp384r1 or secp521r1")
        }
        throw d.err("Wrong curve name or curve not supported: '\(name)' (Berth supports x25519, secp256r1, secp384r1, secp521r1)")
    }
}

/// Caddy's `SubjectQualifiesForPublicCert`: names that can get a publicly trusted certificate.
/// Everything else (localhost, IPs, .local, .internal, .home.arpa …) uses the local CA.
package enum CertificateNames {
    package static func qualifiesForPublicCert(_ name: String) -> Bool {
        let n = name.lowercased()
        if n.isEmpty || n == "localhost" { return false }
        for suffix in [".localhost", ".local", ".internal", ".home.arpa", ".invalid", ".test", ".lan"] where n.hasSuffix(suffix) {
            return false
        }
        if isIP(n) { return false }
        if n.hasPrefix(".") || n.hasSuffix(".") { return false }
        // Wildcards qualify only one level deep and not as the whole name.
        if n.contains("*") {
            let labels = n.split(separator: ".")
            return labels.count > 2 && labels[0] == "*" && !labels.dropFirst().contains("*")
        }
        return n.contains(".")
    }

    package static func isIP(_ s: String) -> Bool {
        var t = s
        if t.hasPrefix("[") && t.hasSuffix("]") { t = String(t.dropFirst().dropLast()) }
        if t.contains(":") { return t.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } }
        let parts = t.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in Int(p).map { (0...255).contains($0) } ?? false }
    }
}

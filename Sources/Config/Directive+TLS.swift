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
    package var location: SourceLocation
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
            case "ciphers", "curves":
                // Berth's policy (AEAD + forward secrecy, X25519/P-256/P-384) is fixed and
                // stricter than Caddy's defaults; narrowing it is not supported yet.
                throw d.err("tls \(d.val) is not supported by this Berth build yet (Berth allows only AEAD forward-secret suites and X25519/P-256/P-384)")
            case "client_auth", "load", "dns", "on_demand", "key_type", "resolvers", "propagation_delay", "propagation_timeout", "dns_ttl", "insecure_secrets_log":
                throw d.err("tls \(d.val) is not supported by this Berth build yet")
            default:
                throw d.err("unknown subdirective: \(d.val)")
            }
        }
        site.tls = t
    }

    static func tlsVersion(_ v: String, _ d: inout Dispenser) throws(CaddyfileError) -> String {
        switch v {
        case "tls1.2", "tls1.3": return v
        case "tls1.0", "tls1.1": throw d.err("\(v) is not supported by Berth: TLS 1.2 is the minimum")
        default: throw d.err("wrong protocol name or protocol not supported: '\(v)'")
        }
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

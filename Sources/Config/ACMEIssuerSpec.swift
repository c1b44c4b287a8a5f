import JSON
import Caddyfile

/// How a site's public names get their certificates from an ACME CA (caddy-behavior §15):
/// the global `email` / `acme_ca` / `acme_ca_root` / `acme_eab` options, overridden per site by
/// `tls <email>`, `tls { ca … ; ca_root … ; eab … }` or `tls { issuer acme { … } }`.
///
/// A nil `directory` means "the default CA": `BERTH_ACME_CA` from the environment when set
/// (a Berth extension, so the seed examples run against a test CA unchanged), else Let's
/// Encrypt. Resolved by the server at run time, so `adapt` output does not depend on it.
package struct ACMEIssuerSpec: Sendable, Hashable {
    /// `dir` / `ca` / `acme_ca`: the directory URL.
    package var directory: String?
    /// `email` / `tls <email>`: the account contact.
    package var email: String?
    /// `trusted_roots` / `ca_root` / `acme_ca_root`: PEM files trusted for the CA's HTTPS
    /// endpoint (needed for Pebble or a private CA).
    package var trustedRootFiles: [String] = []
    /// `eab <key_id> <mac_key>` (RFC 8555 §7.3.4).
    package var eabKeyID: String?
    package var eabMACKey: String?
    /// `disable_http_challenge`.
    package var disableHTTPChallenge = false
    /// `disable_tlsalpn_challenge`.
    package var disableTLSALPNChallenge = false

    package init() {}

    /// True when nothing differs from the defaults (no `apps.tls` policy is emitted then).
    var isDefault: Bool { self == ACMEIssuerSpec() }

    /// `site` overrides `self` (the global options) field by field.
    func overridden(by site: ACMEIssuerSpec?) -> ACMEIssuerSpec {
        guard let site else { return self }
        var o = self
        if let d = site.directory { o.directory = d }
        if let e = site.email { o.email = e }
        if !site.trustedRootFiles.isEmpty { o.trustedRootFiles = site.trustedRootFiles }
        if let k = site.eabKeyID {
            o.eabKeyID = k
            o.eabMACKey = site.eabMACKey
        }
        o.disableHTTPChallenge = o.disableHTTPChallenge || site.disableHTTPChallenge
        o.disableTLSALPNChallenge = o.disableTLSALPNChallenge || site.disableTLSALPNChallenge
        return o
    }

    /// Caddy-shaped issuer object for `apps.tls.automation.policies[].issuers`.
    var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if let d = directory { o.append(("ca", .string(d))) }
        var challenges: [(String, JSONValue)] = []
        if disableHTTPChallenge { challenges.append(("http", .object([("disabled", .bool(true))]))) }
        if disableTLSALPNChallenge { challenges.append(("tls-alpn", .object([("disabled", .bool(true))]))) }
        if !challenges.isEmpty { o.append(("challenges", .object(challenges))) }
        if let e = email { o.append(("email", .string(e))) }
        if let k = eabKeyID {
            o.append(("external_account", .object([("key_id", .string(k)), ("mac_key", .string(eabMACKey ?? ""))])))
        }
        o.append(("module", .string("acme")))
        if !trustedRootFiles.isEmpty { o.append(("trusted_roots_pem_files", .array(trustedRootFiles.map { .string($0) }))) }
        return .object(o)
    }
}

extension DirectiveParsers {
    /// `issuer acme [{ dir, email, trusted_roots, eab, disable_http_challenge,
    /// disable_tlsalpn_challenge }]`, after the `acme` token.
    static func acmeIssuer(_ d: inout Dispenser, into spec: inout ACMEIssuerSpec) throws(CaddyfileError) {
        if d.nextArg() { throw d.argErr() }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            let sub = d.val
            switch sub {
            case "dir":
                guard d.nextArg() else { throw d.argErr() }
                spec.directory = d.val
            case "test_dir":
                // Caddy falls back to it after failures; Berth has one CA per issuer.
                throw d.err("issuer acme test_dir is not supported by this Berth build yet")
            case "email":
                guard d.nextArg() else { throw d.argErr() }
                spec.email = d.val
            case "trusted_roots":
                var files: [String] = []
                while d.nextArg() { files.append(d.val) }
                if files.isEmpty { throw d.argErr() }
                spec.trustedRootFiles += files
            case "eab":
                guard d.nextArg() else { throw d.argErr() }
                spec.eabKeyID = d.val
                guard d.nextArg() else { throw d.argErr() }
                spec.eabMACKey = d.val
            case "disable_http_challenge":
                spec.disableHTTPChallenge = true
            case "disable_tlsalpn_challenge":
                spec.disableTLSALPNChallenge = true
            default:
                throw d.err("issuer acme option '\(sub)' is not supported by this Berth build yet")
            }
            if d.nextArg() { throw d.argErr() }
        }
        if spec.disableHTTPChallenge && spec.disableTLSALPNChallenge {
            throw d.err("issuer acme: disabling both the HTTP and the TLS-ALPN challenge leaves none (Berth does not support DNS-01 yet)")
        }
    }

    /// Global `acme_eab { key_id …; mac_key … }`.
    static func acmeEAB(_ d: inout Dispenser, into spec: inout ACMEIssuerSpec) throws(CaddyfileError) {
        if d.nextArg() { throw d.argErr() }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            let key = d.val
            guard d.nextArg() else { throw d.argErr() }
            switch key {
            case "key_id": spec.eabKeyID = d.val
            case "mac_key": spec.eabMACKey = d.val
            default: throw d.err("unrecognized acme_eab option '\(key)'")
            }
        }
        if spec.eabKeyID == nil || spec.eabMACKey == nil { throw d.err("acme_eab needs key_id and mac_key") }
    }
}

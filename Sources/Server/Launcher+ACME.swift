#if canImport(Glibc)
import Glibc
#endif
import ACME
import Config
import IOCore

extension Launcher {
    /// `berth acme revoke NAME`: revokes the stored ACME certificate for `name` with its CA
    /// (RFC 8555 §7.6, signed by the stored account) and marks it revoked in storage. A running
    /// Berth using the same data directory replaces it at its next check — at once after
    /// SIGUSR1 / `berth reload --force`, else within the maintenance interval (10 minutes) — and
    /// keeps serving the old one until the new one is there.
    ///
    /// The CA comes from the config's settings for that name (`--config`), else the default
    /// CA (`BERTH_ACME_CA`, else Let's Encrypt).
    package static func acmeRevoke(_ o: RunOptions, name: String, reason: Int?) -> Int32 {
        do {
            if let e = o.envFile { try loadEnvFile(e) }
            let env = environment()
            var spec = ACMEIssuerSpec()
            if let loaded = try loadConfig(o, environment: env) {
                let specs = loaded.config.servers.flatMap { $0.tls?.certificates ?? [] }
                guard let match = specs.first(where: { $0.names.contains(name.lowercased()) }) else {
                    throw ConfigError("\(name) is not a site name of \(loaded.path ?? "the config")")
                }
                guard case .acme(let issuer) = match.source else {
                    throw ConfigError("\(name) does not get its certificate from ACME in \(loaded.path ?? "the config")")
                }
                spec = issuer
            }
            let settings = try ACMERuntime.settings(spec, environment: env)
            let manager = ACMERuntime.certificateManager()
            let revoked = try manager.revokeStored(ManagedCertificate(name: name, issuer: settings), reason: reason)
            FileIO.writeAll(1, "Revoked the certificate for \(name) (valid until \(revoked.certificate.notAfter)); a running Berth replaces it at its next check (send SIGUSR1 or run `berth reload --force` to make it check now)\n")
            return 0
        } catch {
            FileIO.writeAll(2, "Error: \(error)\n")
            return 1
        }
    }
}

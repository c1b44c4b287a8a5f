#if canImport(Glibc)
import JSON
import Glibc
#endif
import IOCore
import TLS

/// A certificate read back from storage.
package struct StoredCertificate: Sendable {
    /// Ready to serve.
    package var certificate: TLSCertificate
    /// The chain as the CA sent it (leaf first).
    package var chainPEM: [UInt8]
    /// The metadata document (`<name>.json`).
    package var metadata: JSONValue
    /// Revoked by `berth acme revoke` (or another instance): must be replaced.
    package var revoked: Bool { metadata["revoked"]?.boolValue ?? false }
}

/// Berth's ACME data directory, laid out like Caddy's (certmagic's) so an operator finds things
/// where they expect them:
///
///     $XDG_DATA_HOME/berth/
///       certificates/<ca>/<name>/<name>.crt   chain, leaf first (0644)
///       certificates/<ca>/<name>/<name>.key   private key (0600)
///       certificates/<ca>/<name>/<name>.json  {"names", "issuer", "not_after", "revoked"?}
///       acme/<ca>/users/<email|default>/account.key|.json
///       locks/<ca>-<name>.lock                flock(2) while obtaining
///
/// `<ca>` is the CA's host (`-port` when not 443); a wildcard `*.example.com` is stored as
/// `wildcard_.example.com`. Directories are 0700. Files are written to a temporary name and
/// renamed, so a reader never sees half a file; the key is written before the chain, so a
/// chain on disk always has its key.
///
/// Two Berth instances sharing the directory (a blue/green restart, two containers on one
/// volume) serialize issuance per name with an exclusive `flock` on the lock file: the second
/// one waits, then finds the first one's certificate and uses it instead of ordering another.
package struct ACMEStorage: Sendable {
    /// `…/berth`.
    package let root: String

    package init(root: String) { self.root = root }

    /// `$XDG_DATA_HOME/berth`, else `$HOME/.local/share/berth`, else `./berth` (Caddy's
    /// `AppDataDir` rule, as `LocalCA.defaultDirectory` uses).
    package static func defaultRoot() -> String {
        if let x = getenv("XDG_DATA_HOME"), x.pointee != 0 { return String(cString: x) + "/berth" }
        if let h = getenv("HOME"), h.pointee != 0 { return String(cString: h) + "/.local/share/berth" }
        return "./berth"
    }

    /// A name safe as one path component: lower-cased, `*` → `wildcard_`, and anything but
    /// `[a-z0-9._@-]` → `_` (certmagic's `StorageKeys.Safe`).
    package static func safeName(_ s: String) -> String {
        var out = ""
        for c in s.lowercased().replacingWildcard() {
            if c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "-" || c == "_" || c == "@") {
                out.append(c)
            } else {
                out.append("_")
            }
        }
        if out.isEmpty || out == "." || out == ".." { out = "_" + out }
        return out
    }

    // MARK: Paths

    package func certificateDirectory(ca: String, name: String) -> String {
        "\(root)/certificates/\(ca)/\(Self.safeName(name))"
    }

    package func certificatePaths(ca: String, name: String) -> (crt: String, key: String, json: String) {
        let d = certificateDirectory(ca: ca, name: name)
        let n = Self.safeName(name)
        return ("\(d)/\(n).crt", "\(d)/\(n).key", "\(d)/\(n).json")
    }

    package func accountDirectory(ca: String, email: String?) -> String {
        let user = email.flatMap { $0.isEmpty ? nil : Self.safeName($0) } ?? "default"
        return "\(root)/acme/\(ca)/users/\(user)"
    }

    package func lockPath(_ key: String) -> String { "\(root)/locks/\(Self.safeName(key)).lock" }

    // MARK: Certificates

    /// The stored certificate for `name`, or nil when absent or unreadable (a corrupt file is
    /// treated as absent: a new certificate will replace it).
    package func loadCertificate(ca: String, name: String) -> StoredCertificate? {
        let p = certificatePaths(ca: ca, name: name)
        guard FileIO.isRegularFile(p.crt), FileIO.isRegularFile(p.key),
            let chain = try? FileIO.readAll(p.crt, limit: 1 << 20), let key = try? FileIO.readAll(p.key, limit: 1 << 20),
            let cert = try? TLSCertificate(certificatePEM: chain, keyPEM: key)
        else { return nil }
        var meta = JSONValue.object([])
        if let m = try? FileIO.readAll(p.json, limit: 1 << 20), let j = try? JSONValue.parse(m) { meta = j }
        return StoredCertificate(certificate: cert, chainPEM: chain, metadata: meta)
    }

    /// Writes a certificate: key (0600), then chain, then metadata.
    package func saveCertificate(ca: String, name: String, chainPEM: [UInt8], keyPEM: [UInt8], metadata: JSONValue)
        throws(ACMEError)
    {
        let p = certificatePaths(ca: ca, name: name)
        try Self.makeDirectories(certificateDirectory(ca: ca, name: name))
        do {
            try FileIO.writeAtomically(p.key, keyPEM, mode: 0o600)
            try FileIO.writeAtomically(p.crt, chainPEM, mode: 0o644)
            try FileIO.writeAtomically(p.json, metadata.bytes + [0x0A], mode: 0o644)
        } catch {
            throw .storage(error.description)
        }
    }

    /// Rewrites the metadata of a stored certificate (e.g. `"revoked": true`).
    package func updateMetadata(ca: String, name: String, _ body: (JSONValue) -> JSONValue) throws(ACMEError) {
        let p = certificatePaths(ca: ca, name: name)
        var meta = JSONValue.object([])
        if let m = try? FileIO.readAll(p.json, limit: 1 << 20), let j = try? JSONValue.parse(m) { meta = j }
        do {
            try FileIO.writeAtomically(p.json, body(meta).bytes + [0x0A], mode: 0o644)
        } catch {
            throw .storage(error.description)
        }
    }

    // MARK: Account

    /// The account key and URL stored for (`ca`, `email`), if any.
    package func loadAccount(ca: String, email: String?) -> (key: ACMEKey, url: String?)? {
        let d = accountDirectory(ca: ca, email: email)
        guard let pem = try? FileIO.readAll(d + "/account.key", limit: 1 << 16), let key = try? ACMEKey(pem: pem) else {
            return nil
        }
        var url: String?
        if let b = try? FileIO.readAll(d + "/account.json", limit: 1 << 16), let j = try? JSONValue.parse(b) {
            url = j["url"]?.stringValue
        }
        return (key, url)
    }

    /// Stores the account key (0600) and, when known, its URL.
    package func saveAccount(ca: String, email: String?, key: ACMEKey, url: String?) throws(ACMEError) {
        let d = accountDirectory(ca: ca, email: email)
        try Self.makeDirectories(d)
        do {
            try FileIO.writeAtomically(d + "/account.key", key.pem(), mode: 0o600)
            var meta: [(String, JSONValue)] = []
            if let url { meta.append(("url", .string(url))) }
            if let email { meta.append(("email", .string(email))) }
            try FileIO.writeAtomically(d + "/account.json", JSONValue.object(meta).bytes + [0x0A], mode: 0o644)
        } catch {
            throw .storage(error.description)
        }
    }

    // MARK: Locking

    /// Runs `body` holding an exclusive `flock` on the lock file for `key`, waiting for another
    /// process to release it. The lock dies with the process, so a crash never leaves it held.
    package func withLock<T>(_ key: String, _ body: () throws(ACMEError) -> T) throws(ACMEError) -> T {
        let path = lockPath(key)
        try Self.makeDirectories(root + "/locks")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .storage(IOError("open \(path)", errno: errno).description) }
        defer { close(fd) }  // closing releases the lock
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .storage(IOError("flock \(path)", errno: errno).description) }
        }
        return try body()
    }

    /// `mkdir -p`, new directories 0700.
    package static func makeDirectories(_ path: String) throws(ACMEError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0, errno != EEXIST {
                throw .storage(IOError("mkdir \(prefix)", errno: errno).description)
            }
        }
    }
}

extension String {
    /// `*.example.com` → `wildcard_.example.com` (certmagic's storage key for wildcards).
    fileprivate func replacingWildcard() -> String {
        hasPrefix("*") ? "wildcard_" + dropFirst() : self
    }
}

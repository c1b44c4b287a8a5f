import JSON
import Caddyfile
import Handlers
import HTTPCore
import IOCore

extension DirectiveParsers {
    /// `basic_auth [<matcher>] [<hash_algorithm> [<realm>]] { <username> <hash> … }`
    /// (`basicauth` is the old name). Caddy's `caddyauth/caddyfile.go`: bcrypt is the default
    /// and the only algorithm here (argon2id is refused); a hash that does not start with `$`
    /// is the historical base64-wrapped form and is decoded; a username may appear once.
    static func basicAuth(_ d: inout Dispenser, _ site: inout SiteState) throws(CaddyfileError) {
        let m = try matcher(&d, site)
        var args: [String] = []
        while d.nextArg() { args.append(d.val) }
        guard args.count <= 2 else { throw d.argErr() }
        var spec = BasicAuthSpec()
        if let algorithm = args.first {
            switch algorithm {
            case "bcrypt": break
            case "argon2id": throw d.err("basic_auth hash algorithm 'argon2id' is not supported by this Berth build yet (use bcrypt hashes: berth hash-password)")
            default: throw d.err("unrecognized hash algorithm: \(algorithm)")
            }
        }
        if args.count == 2 { spec.realm = args[1] }
        let nesting = d.nesting
        while d.nextBlock(nesting) {
            let user = d.val
            guard d.nextArg() else { throw d.err("username and password cannot be empty or missing") }
            let hash = d.val
            if d.nextArg() { throw d.argErr() }
            if user.isEmpty || hash.isEmpty { throw d.err("username and password cannot be empty or missing") }
            spec.accounts.append((user, hash))
        }
        do {
            _ = try spec.checkedAccounts()
        } catch {
            throw d.err(error.description)
        }
        site.addRoute("basic_auth", matcher: m, handlers: [.spec(spec)])
    }
}

/// Caddy's `authentication` handler with the `http_basic` provider.
package struct BasicAuthSpec: HandlerSpec {
    package var accounts: [(username: String, password: String)] = []
    package var realm = ""
    package var handlerName: String { "authentication" }
    package var jsonFields: [(String, JSONValue)] {
        var basic: [(String, JSONValue)] = [
            ("accounts", .array(accounts.map { .object([("password", .string($0.password)), ("username", .string($0.username))]) })),
            ("hash", .object([("algorithm", .string("bcrypt"))])),
            ("hash_cache", .object([])),
        ]
        if !realm.isEmpty { basic.append(("realm", .string(realm))) }
        return [("providers", .object([("http_basic", .object(basic))]))]
    }

    /// The accounts with their hashes as crypt(5) strings: base64-wrapped ones decoded (as
    /// Caddy does for passwords not starting with `$`), each a well-formed bcrypt hash, no
    /// username twice. Errors name the account as Caddy does (`account 0: …`).
    func checkedAccounts() throws(ConfigError) -> [(username: String, hash: String)] {
        var out: [(username: String, hash: String)] = []
        var seen: Set<String> = []
        for (i, a) in accounts.enumerated() {
            var hash = a.password
            if !hash.hasPrefix("$") {
                guard let bytes = Base64.decode(hash, paddingRequired: true) else {
                    throw ConfigError("account \(i): base64-decoding password: illegal base64 data")
                }
                hash = String(decoding: bytes, as: UTF8.self)
            }
            guard BasicAuthSpec.isBcrypt(hash) else {
                if hash.hasPrefix("$argon2") {
                    throw ConfigError("account \(i): argon2id hashes are not supported by this Berth build yet (use a bcrypt hash: berth hash-password)")
                }
                throw ConfigError("account \(i): password is not a bcrypt hash ($2a$…, as `caddy hash-password` or `berth hash-password` print)")
            }
            guard seen.insert(a.username).inserted else {
                throw ConfigError("account \(i): username is not unique: \(a.username)")
            }
            out.append((a.username, hash))
        }
        return out
    }

    /// `$2a$`/`$2b$`/`$2y$`, a two-digit cost in 4…31, `$`, 53 characters of bcrypt's base64.
    static func isBcrypt(_ h: String) -> Bool {
        let b = Array(h.utf8)
        guard b.count == 60, b[0] == 36, b[1] == 50, [97, 98, 121].contains(b[2]), b[3] == 36, b[6] == 36 else { return false }
        guard let cost = Int(String(decoding: b[4..<6], as: UTF8.self)), (4...31).contains(cost) else { return false }
        return b[7...].allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 46 || c == 47
        }
    }

    package func build(_ context: BuildContext) throws(ConfigError) -> any Handler {
        BasicAuthHandler(accounts: try checkedAccounts(), realm: realm)
    }

    static func decode(_ r: JSONObjectReader) throws(ConfigError) -> any HandlerSpec {
        guard let providers = try r.object("providers") else { throw r.missing("providers") }
        guard let basic = try providers.object("http_basic") else { throw providers.missing("http_basic") }
        try providers.finish()
        var spec = BasicAuthSpec()
        for (v, p) in try basic.array("accounts") ?? [] {
            let a = try JSONObjectReader(v, p)
            guard let user = try a.string("username") else { throw a.missing("username") }
            guard let password = try a.string("password") else { throw a.missing("password") }
            try a.finish()
            spec.accounts.append((user, password))
        }
        if let h = try basic.object("hash") {
            _ = try h.choice("algorithm", ["bcrypt"])
            try h.finish()
        }
        if let c = try basic.object("hash_cache") { try c.finish() }
        spec.realm = try basic.string("realm") ?? ""
        try basic.finish()
        do {
            _ = try spec.checkedAccounts()
        } catch {
            throw basic.error("accounts", error.description)
        }
        return spec
    }
}

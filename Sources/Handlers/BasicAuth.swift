#if canImport(Glibc)
import Glibc
#endif
internal import CLinux
import EventLoop
import HTTPCore
import IOCore
import Synchronization

/// Caddy's `basic_auth` (`authentication` handler, `http_basic` provider): HTTP Basic
/// credentials (RFC 7617) checked against bcrypt hashes.
///
/// - No or malformed credentials, an unknown user or a wrong password: handler error 401 with
///   `WWW-Authenticate: Basic realm="<realm>"` (realm `restricted` by default), so
///   `handle_errors` runs and the body is empty otherwise — as Caddy.
/// - An unknown user is checked against an account's hash and refused whatever the result, so
///   a missing account takes as long as a wrong password (Caddy's side-channel guard).
/// - bcrypt at Caddy's default cost 14 takes about a second of CPU: the check runs on a small
///   pool of worker threads (`PasswordWorkers`), never on an event loop. The request is
///   suspended meanwhile (`request.routeSuspension`) and the route walk continues after this
///   handler once the password is known to be right (`PendingErrorRouter.resumeRouting`).
/// - Successful checks are cached (Caddy's `hash_cache`, which its Caddyfile adapter always
///   turns on): the next request with the same credentials goes on at once. At most 1,000
///   entries; a random one is dropped when full.
package final class BasicAuthHandler: Handler, @unchecked Sendable {
    /// Username → crypt(5) hash (`$2a$14$…`).
    let accounts: [String: String]
    let realmHeader: String
    /// Checked for users that do not exist.
    let fakeHash: String
    let cache = Mutex<[String: Bool]>([:])
    static let cacheLimit = 1000

    package init(accounts: [(username: String, hash: String)], realm: String) {
        var a: [String: String] = [:]
        for acct in accounts { a[acct.username] = acct.hash }
        self.accounts = a
        self.realmHeader = "Basic realm=\"" + (realm.isEmpty ? "restricted" : realm) + "\""
        // A user that does not exist is checked against a real hash (the first account's:
        // same cost, so the same time) and then refused.
        fakeHash = accounts.first?.hash ?? ""
    }

    /// The cost of a `$2?$NN$` hash, or nil.
    static func bcryptCost(_ hash: String) -> Int? {
        let parts = hash.split(separator: "$", omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasPrefix("2"), let c = Int(parts[1]) else { return nil }
        return c
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        guard let (user, password) = BasicAuthHandler.credentials(request) else {
            return deny(request, response)
        }
        let known = accounts[user]
        let hash = known ?? fakeHash
        if hash.isEmpty { return deny(request, response) }
        let key = hash + "\u{0}" + password
        if known != nil, cache.withLock({ $0[key] != nil }) {
            request.authUser = user
            return .next
        }
        guard let loop = EventLoop.current else { return deny(request, response) }
        let check = PendingPasswordCheck(handler: self, loop: loop, request: request, response: response,
                                         user: user, known: known != nil, key: key)
        guard PasswordWorkers.shared.submit({
            let ok = berth_password_check(password, hash) == 1
            loop.execute { check.complete(ok) }
        }) else {
            // Too many checks queued (a password-guessing flood): shed load rather than queue
            // seconds of work.
            return HandlerError.fail(request, response, status: 503, trace: "basic_auth: password checks queue full")
        }
        request.routeSuspension = []
        response.flowControl?.setFlowObserver(check, for: response)
        return .pending
    }

    /// 401 with the challenge (a handler error: `handle_errors` may answer).
    func deny(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        response.fields.append(name: "WWW-Authenticate", value: realmHeader)
        let m: StaticString = "not authenticated"
        return HandlerError.fail(request, response, status: 401,
                                 message: UnsafeRawBufferPointer(start: m.utf8Start, count: m.utf8CodeUnitCount),
                                 trace: "basic_auth")
    }

    func remember(_ key: String) {
        cache.withLock { c in
            if c.count >= BasicAuthHandler.cacheLimit, let victim = c.keys.randomElement() { c[victim] = nil }
            c[key] = true
        }
    }

    /// `Authorization: Basic base64(user:password)` (Go's `Request.BasicAuth`: the scheme is
    /// case-insensitive, the user is everything before the first colon).
    static func credentials(_ request: HTTPRequest) -> (String, String)? {
        request.fields.withValue(.authorization) { v -> (String, String)? in
            let prefix: StaticString = "basic "
            guard v.count > prefix.utf8CodeUnitCount else { return nil }
            for k in 0..<prefix.utf8CodeUnitCount where v[k] | 0x20 != prefix.utf8Start[k] | 0x20 { return nil }
            guard let decoded = Base64.decode(UnsafeRawBufferPointer(rebasing: v[prefix.utf8CodeUnitCount...]), paddingRequired: true),
                  let colon = decoded.firstIndex(of: 58) else { return nil }
            return (String(decoding: decoded[..<colon], as: UTF8.self), String(decoding: decoded[(colon + 1)...], as: UTF8.self))
        } ?? nil
    }
}

/// One password check in flight: the suspended request, and what to do when the worker is done
/// (on the request's loop). A client that goes away meanwhile cancels it.
final class PendingPasswordCheck: ResponseFlowObserver, @unchecked Sendable {
    let handler: BasicAuthHandler
    let loop: EventLoop
    let request: HTTPRequest
    let response: HTTPResponse
    let user: String
    let known: Bool
    let key: String
    var aborted = false

    init(handler: BasicAuthHandler, loop: EventLoop, request: HTTPRequest, response: HTTPResponse, user: String, known: Bool, key: String) {
        self.handler = handler
        self.loop = loop
        self.request = request
        self.response = response
        self.user = user
        self.known = known
        self.key = key
    }

    func complete(_ ok: Bool) {
        if aborted { return }
        response.flowControl?.setFlowObserver(nil, for: response)
        if ok && known {
            handler.remember(key)
            request.authUser = user
            if let router = response.errorRouter {
                router.resumeRouting(request, response)
            } else {
                request.routeSuspension = nil
                response.sendEmpty()
            }
        } else {
            request.routeSuspension = nil
            response.fields.append(name: "WWW-Authenticate", value: handler.realmHeader)
            response.failPending(request, status: 401, message: "not authenticated")
        }
    }

    func responseWritable() {}

    func responseAborted() {
        aborted = true
        request.routeSuspension = nil
        if !response.headSent { response.sendEmpty() } else if !response.finished { response.finish() }
    }
}

/// Threads that run slow password hashing off the event loops (at most two, a bounded queue:
/// a password-guessing flood is shed with 503 rather than queued for minutes).
enum PasswordWorkers {
    static let maxQueued = 256
    static let shared = BlockingPool(
        name: "berth-passwords", threads: min(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))), maxQueued: maxQueued)
}

/// crypt(5) password hashes through libcrypt (bcrypt).
package enum PasswordHash {
    /// A new `$2a$` bcrypt hash (Go's bcrypt prefix, as `caddy hash-password` prints), or nil.
    package static func bcrypt(_ password: String, cost: Int) -> String? {
        var out = [CChar](repeating: 0, count: 128)
        guard berth_password_hash_bcrypt(password, Int32(cost), &out, out.count) == 0 else { return nil }
        let bytes = out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `password` matches `hash` (blocking; seconds at high costs).
    package static func verify(_ password: String, hash: String) -> Bool {
        berth_password_check(password, hash) == 1
    }
}

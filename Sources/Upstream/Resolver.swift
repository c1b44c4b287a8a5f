#if canImport(Glibc)
import Glibc
#endif
import EventLoop
import IOCore

/// Name resolution off the event loops: `getaddrinfo` blocks (it reads /etc/hosts, asks the
/// DNS server Podman's aardvark-dns provides, …), so it runs on a small pool of worker threads
/// and the answer is posted back to the asking loop with `EventLoop.execute`.
///
/// Answers are cached process-wide for `ttlNanos` (a short time: container addresses change
/// when containers restart); a failed dial invalidates the entry so the next dial resolves
/// again. Concurrent lookups of the same name share one `getaddrinfo`.
package final class Resolver: @unchecked Sendable {
    /// The result delivered to a waiter, on its loop.
    package typealias Completion = @Sendable (Result<[SocketAddress], IOError>) -> Void

    /// The process-wide resolver.
    package static let shared = Resolver(threads: 2)

    /// How long an answer is reused.
    package var ttlNanos: UInt64 = 5_000_000_000

    private struct Key: Hashable {
        var host: String
        var port: Int
    }
    private struct Entry {
        var addresses: [SocketAddress]
        var expires: UInt64
    }
    private struct Waiter {
        var loop: EventLoop
        var completion: Completion
    }

    private var mutex = pthread_mutex_t()
    private var cache: [Key: Entry] = [:]
    private var inFlight: [Key: [Waiter]] = [:]
    private let pool: BlockingPool

    init(threads: Int) {
        pool = BlockingPool(name: "berth-resolver", threads: threads)
        pthread_mutex_init(&mutex, nil)
    }

    /// A cached answer that has not expired (any thread).
    package func cached(host: String, port: Int) -> [SocketAddress]? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard let e = cache[Key(host: host, port: port)], e.expires > Clock.monotonicNanos() else { return nil }
        return e.addresses
    }

    /// Forgets `host:port` (a dial to its addresses failed).
    package func invalidate(host: String, port: Int) {
        pthread_mutex_lock(&mutex)
        cache[Key(host: host, port: port)] = nil
        pthread_mutex_unlock(&mutex)
    }

    /// Resolves `host:port`; `completion` runs on `loop` (never inside this call).
    package func resolve(host: String, port: Int, on loop: EventLoop, _ completion: @escaping Completion) {
        let key = Key(host: host, port: port)
        pthread_mutex_lock(&mutex)
        if let e = cache[key], e.expires > Clock.monotonicNanos() {
            pthread_mutex_unlock(&mutex)
            let a = e.addresses
            loop.execute { completion(.success(a)) }
            return
        }
        let w = Waiter(loop: loop, completion: completion)
        if inFlight[key] != nil {
            inFlight[key]!.append(w)
            pthread_mutex_unlock(&mutex)
            return
        }
        inFlight[key] = [w]
        pthread_mutex_unlock(&mutex)
        if !pool.submit({ [self] in lookUp(key) }) {
            // No worker thread could be started: answer every waiter rather than leave them.
            lookUpFailed(key, IOError("lookup \(host): no resolver thread", errno: EAGAIN))
        }
    }

    /// On a pool thread: one `getaddrinfo`, cached, delivered to every waiter on its loop.
    private func lookUp(_ key: Key) {
        let result = Resolver.lookup(host: key.host, port: key.port)
        pthread_mutex_lock(&mutex)
        if case .success(let a) = result {
            cache[key] = Entry(addresses: a, expires: Clock.monotonicNanos() &+ ttlNanos)
        }
        let waiters = inFlight.removeValue(forKey: key) ?? []
        pthread_mutex_unlock(&mutex)
        deliver(result, to: waiters)
    }

    private func lookUpFailed(_ key: Key, _ error: IOError) {
        pthread_mutex_lock(&mutex)
        let waiters = inFlight.removeValue(forKey: key) ?? []
        pthread_mutex_unlock(&mutex)
        deliver(.failure(error), to: waiters)
    }

    private func deliver(_ result: Result<[SocketAddress], IOError>, to waiters: [Waiter]) {
        for w in waiters {
            let c = w.completion
            w.loop.execute { c(result) }
        }
    }

    /// Blocking `getaddrinfo` (AF_UNSPEC, SOCK_STREAM). Addresses keep the resolver's order
    /// (RFC 6724 sorting by glibc), duplicates removed.
    package static func lookup(host: String, port: Int) -> Result<[SocketAddress], IOError> {
        if let a = SocketAddress(ip: host, port: port) { return .success([a]) }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0 else {
            let msg = gai_strerror(rc).map { String(cString: $0) } ?? "error \(rc)"
            return .failure(IOError("lookup \(host): \(msg)", errno: rc == EAI_SYSTEM ? errno : 0))
        }
        defer { freeaddrinfo(res) }
        var out: [SocketAddress] = []
        var p = res
        while let ai = p {
            if let sa = ai.pointee.ai_addr, let a = SocketAddress(storage: UnsafeRawPointer(sa), length: Int(ai.pointee.ai_addrlen)),
                !out.contains(a)
            {
                out.append(a)
            }
            p = ai.pointee.ai_next
        }
        if out.isEmpty { return .failure(IOError("lookup \(host): no addresses", errno: 0)) }
        return .success(out)
    }
}

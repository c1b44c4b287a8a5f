import HTTPCore
import IOCore
import Synchronization

/// Upstream selection (`lb_policy`, Caddy's `selectionpolicies.go`). Only available upstreams
/// (healthy, per `HealthOptions`) are candidates; nil means none is available (→ 503).
///
/// Hash policies use rendezvous (highest-random-weight) hashing as Caddy does, so removing
/// one upstream only moves the keys that mapped to it; the hash is FNV-1a 64 (Caddy uses
/// xxhash: the mapping differs from Caddy's, the properties are the same).
package final class LoadBalancer: Sendable {
    package let policy: SelectionPolicy
    package let hosts: [UpstreamHost]
    package let health: HealthOptions
    private let counter = Atomic<Int>(0)
    /// The upstream when there is exactly one: every policy picks it while it is available
    /// (the exchange then skips building a selection context).
    package let single: UpstreamHost?

    /// `health`'s scalars, so the single-upstream check copies no struct (with its arrays).
    private let failDurationMilliseconds: Int
    private let maxFails: Int
    private let unhealthyRequestCount: Int

    package init(policy: SelectionPolicy, hosts: [UpstreamHost], health: HealthOptions) {
        self.policy = policy
        self.hosts = hosts
        self.health = health
        single = hosts.count == 1 ? hosts[0] : nil
        failDurationMilliseconds = health.failDurationMilliseconds
        maxFails = health.maxFails
        unhealthyRequestCount = health.unhealthyRequestCount
    }

    /// `single.isHealthy(health)` without copying `health`.
    @inline(__always)
    package func singleIsAvailable(_ h: UpstreamHost) -> Bool {
        h.isHealthy(failDurationMilliseconds: failDurationMilliseconds, maxFails: maxFails,
                    unhealthyRequestCount: unhealthyRequestCount)
    }

    /// What the policy may look at besides the hosts.
    package struct Context {
        package var request: HTTPRequest
        /// A per-loop random number source.
        package var rng: FastRandom
        /// Slots of upstreams that already failed for this request (avoided while others
        /// are available).
        package var excluded: [Int]
        package init(request: HTTPRequest, rng: FastRandom, excluded: [Int] = []) {
            self.request = request
            self.rng = rng
            self.excluded = excluded
        }
    }

    /// Picks an upstream, or nil. `cookieToSet` receives the value to set for `cookie`.
    /// Upstreams in `ctx.excluded` are only picked when nothing else is available.
    package func select(_ ctx: Context, cookieToSet: inout [UInt8]?) -> UpstreamHost? {
        if !ctx.excluded.isEmpty {
            if let h = pick(ctx, cookieToSet: &cookieToSet) { return h }
            var all = ctx
            all.excluded = []
            return pick(all, cookieToSet: &cookieToSet)
        }
        return pick(ctx, cookieToSet: &cookieToSet)
    }

    @inline(__always)
    private func ok(_ h: UpstreamHost, _ ctx: Context) -> Bool {
        h.isHealthy(health) && (ctx.excluded.isEmpty || !ctx.excluded.contains(h.slot))
    }

    private func pick(_ ctx: Context, cookieToSet: inout [UInt8]?) -> UpstreamHost? {
        let n = hosts.count
        if n == 0 { return nil }
        if n == 1 { return ok(hosts[0], ctx) ? hosts[0] : nil }
        switch policy {
        case .first:
            return hosts.first { ok($0, ctx) }
        case .random:
            return randomAvailable(ctx)
        case .randomChoose(let k):
            var best: UpstreamHost? = nil
            for _ in 0..<max(1, k) {
                guard let h = randomAvailable(ctx) else { break }
                if best == nil || h.inFlight.load(ordering: .relaxed) < best!.inFlight.load(ordering: .relaxed) { best = h }
            }
            return best
        case .roundRobin:
            let start = counter.wrappingAdd(1, ordering: .relaxed).oldValue
            for i in 0..<n {
                let h = hosts[(start &+ i) & Int.max % n]
                if ok(h, ctx) { return h }
            }
            return nil
        case .leastConn:
            var best: UpstreamHost? = nil
            var bestCount = Int.max
            var ties = 0
            for h in hosts where ok(h, ctx) {
                let c = h.inFlight.load(ordering: .relaxed)
                if c < bestCount {
                    best = h
                    bestCount = c
                    ties = 1
                } else if c == bestCount {
                    // Reservoir sampling among ties, as Caddy does.
                    ties += 1
                    if ctx.rng.next() % UInt64(ties) == 0 { best = h }
                }
            }
            return best
        case .ipHash, .clientIPHash:
            guard let remote = ctx.request.connection.remote else { return randomAvailable(ctx) }
            let key = ByteBuffer(capacity: 64)
            remote.writeIP(into: key)
            return rendezvous(key.readable, ctx)
        case .uriHash:
            return ctx.request.withLineBytes(ctx.request.targetRange) { rendezvous($0, ctx) }
        case .query(let name):
            guard let v = LoadBalancer.queryValue(ctx.request, name) else { return randomAvailable(ctx) }
            return v.withUnsafeBytes { rendezvous($0, ctx) }
        case .header(let name):
            guard let v = ctx.request.fields.value(named: name) else { return randomAvailable(ctx) }
            var s = v
            return s.withUTF8 { rendezvous(UnsafeRawBufferPointer($0), ctx) }
        case .cookie(let name, let secret):
            if let v = LoadBalancer.cookieValue(ctx.request, name) {
                for h in hosts where ok(h, ctx) && LoadBalancer.cookieToken(h, secret) == v { return h }
            }
            guard let h = randomAvailable(ctx) else { return nil }
            cookieToSet = Array(LoadBalancer.cookieToken(h, secret).utf8)
            return h
        }
    }

    private func randomAvailable(_ ctx: Context) -> UpstreamHost? {
        // Reservoir sampling over available hosts (Caddy's selectRandomHost).
        var chosen: UpstreamHost? = nil
        var count: UInt64 = 0
        for h in hosts where ok(h, ctx) {
            count += 1
            if ctx.rng.next() % count == 0 { chosen = h }
        }
        return chosen
    }

    private func rendezvous(_ key: UnsafeRawBufferPointer, _ ctx: Context) -> UpstreamHost? {
        var best: UpstreamHost? = nil
        var bestScore: UInt64 = 0
        let keyHash = LoadBalancer.fnv(key, seed: 0xcbf2_9ce4_8422_2325)
        for h in hosts where ok(h, ctx) {
            let hash = h.dialBytes.withUnsafeBytes { LoadBalancer.fnv($0, seed: keyHash) }
            if best == nil || hash > bestScore {
                best = h
                bestScore = hash
            }
        }
        return best
    }

    /// FNV-1a 64.
    package static func fnv(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var h = seed
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    /// The value `cookie` sets for `host`: a keyed hash of its dial address in hex, so the
    /// cookie does not reveal upstream addresses (Caddy uses HMAC-SHA256 with the secret).
    package static func cookieToken(_ host: UpstreamHost, _ secret: String?) -> String {
        var s = (secret ?? "") + "|" + host.address.dial
        let h = s.withUTF8 { fnv(UnsafeRawBufferPointer($0), seed: 0xcbf2_9ce4_8422_2325) }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The value of cookie `name` in the request's Cookie fields.
    package static func cookieValue(_ r: HTTPRequest, _ name: String) -> String? {
        for i in r.fields.entries.indices where r.fields.entries[i].token == .cookie {
            let v = r.fields.withField(i) { _, v in String(decoding: v, as: UTF8.self) }
            for part in v.split(separator: ";") {
                let kv = part.trimmingSpaces()
                if let eq = kv.firstIndex(of: "="), kv[..<eq] == name { return String(kv[kv.index(after: eq)...]) }
            }
        }
        return nil
    }

    /// The first value of query parameter `name` (not decoded).
    package static func queryValue(_ r: HTTPRequest, _ name: String) -> [UInt8]? {
        guard let q = r.queryRange else { return nil }
        let query = r.withLineBytes(q) { String(decoding: $0, as: UTF8.self) }
        for part in query.split(separator: "&") {
            if let eq = part.firstIndex(of: "=") {
                if part[..<eq] == name { return Array(part[part.index(after: eq)...].utf8) }
            } else if part == name {
                return []
            }
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}

/// xorshift64* — a per-loop generator for load balancing (no syscall, no lock).
package final class FastRandom {
    private var state: UInt64
    package init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    @inline(__always)
    package func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

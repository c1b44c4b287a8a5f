internal import CGnuTLS
#if canImport(Glibc)
import Glibc
#endif

/// 0-RTT (RFC 9001 §4.6, RFC 8446 §2.3): a client resuming with a ticket may send requests in
/// its first flight. Early data can be replayed by an attacker, so:
///
/// * GnuTLS's anti-replay (RFC 8446 §8.2) accepts each ticket's early data once within its
///   window (10 s): the ClientHello's binder is recorded here, and a second ClientHello with
///   it has its early data rejected (the client falls back to 1-RTT);
/// * requests whose method is not safe (RFC 9110 §9.2.1: GET, HEAD, OPTIONS, TRACE) are not
///   handled before the handshake completes — by then the client has proven it is live, which
///   a replayed flight cannot — and safe ones handled early carry `Early-Data: 1` (RFC 8470
///   §5.1), so an upstream can answer 425 if it wants to.
///
/// One table per UDP socket, shared by the endpoints of every loop serving it (see
/// `QUICSteering`), so `add` takes a lock: a flight replayed to another socket or another
/// Berth instance is not caught — which is why unsafe methods wait.
final class QUICAntiReplay: @unchecked Sendable {
    let raw: gnutls_anti_replay_t
    /// Recorded ClientHello binders and when they expire (the window), under `lock`.
    private var seen: [[UInt8]: time_t] = [:]
    private var lock = pthread_mutex_t()
    /// Beyond this many live entries, early data is refused (1-RTT still works).
    static let maxEntries = 100_000

    init?() {
        var ar: gnutls_anti_replay_t? = nil
        guard gnutls_anti_replay_init(&ar) == 0, let ar else { return nil }
        raw = ar
        pthread_mutex_init(&lock, nil)
        gnutls_anti_replay_set_add_function(ar, quicAntiReplayAdd)
        gnutls_anti_replay_set_ptr(ar, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        gnutls_anti_replay_deinit(raw)
        pthread_mutex_destroy(&lock)
    }

    /// Records `key` until `expires`; `GNUTLS_E_DB_ENTRY_EXISTS` when it is already there
    /// (a replay) or the table is full.
    func add(_ key: [UInt8], expires: time_t, now: time_t = time(nil)) -> Int32 {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if seen.count >= QUICAntiReplay.maxEntries { seen = seen.filter { $0.value > now } }
        if let e = seen[key], e > now { return GNUTLS_E_DB_ENTRY_EXISTS }
        if seen.count >= QUICAntiReplay.maxEntries { return GNUTLS_E_DB_ENTRY_EXISTS }
        seen[key] = expires
        return 0
    }

    var count: Int {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return seen.count
    }
}

private let quicAntiReplayAdd: gnutls_db_add_func = { ptr, expires, key, _ in
    guard let ptr, let key, let d = key.pointee.data else { return GNUTLS_E_DB_ERROR }
    let table = Unmanaged<QUICAntiReplay>.fromOpaque(ptr).takeUnretainedValue()
    return table.add(Array(UnsafeBufferPointer(start: d, count: Int(key.pointee.size))), expires: expires)
}

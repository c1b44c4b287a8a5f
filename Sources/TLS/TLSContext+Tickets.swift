internal import COpenSSL
import IOCore

#if canImport(Glibc)
import Glibc
#endif

/// One session-ticket key: a 16-byte name (sent in the clear in the ticket so the server can
/// find the key, RFC 5077 §4), an AES-256-CBC key and an HMAC-SHA256 key, in one allocation
/// that is wiped (`OPENSSL_cleanse`) when the key is dropped.
final class TicketKey: @unchecked Sendable {
    static let nameLength = 16
    static let aesLength = 32
    static let hmacLength = 32
    private static let total = nameLength + aesLength + hmacLength

    let bytes: UnsafeMutablePointer<UInt8>
    /// CLOCK_MONOTONIC nanoseconds at creation.
    let created: UInt64

    init(now: UInt64) {
        bytes = .allocate(capacity: TicketKey.total)
        bytes.initialize(repeating: 0, count: TicketKey.total)
        if RAND_bytes(bytes, Int32(TicketKey.total)) != 1 {
            fatalError("RAND_bytes failed: no entropy for session-ticket keys")
        }
        created = now
    }

    deinit {
        OPENSSL_cleanse(bytes, TicketKey.total)
        bytes.deallocate()
    }

    var name: UnsafeMutablePointer<UInt8> { bytes }
    var aesKey: UnsafeMutablePointer<UInt8> { bytes + TicketKey.nameLength }
    var hmacKey: UnsafeMutablePointer<UInt8> { bytes + TicketKey.nameLength + TicketKey.aesLength }

    func hasName(_ other: UnsafePointer<UInt8>) -> Bool {
        memcmp(bytes, other, TicketKey.nameLength) == 0
    }
}

/// Rotating session-ticket encryption keys (TLS 1.2 tickets, RFC 5077; TLS 1.3 PSK tickets,
/// RFC 8446 §4.6.1), shared by every context that should accept each other's tickets.
///
/// New tickets are sealed with the current key; tickets sealed with the previous key are still
/// accepted (and re-issued under the current one); anything older falls back to a full
/// handshake. Keys rotate lazily when a handshake finds the current key older than
/// `rotationInterval`, or explicitly with `rotate()`. Caddy rotates every 12 h as well.
///
/// Keep one ring for the life of the process and pass it to every reload's contexts, so a
/// config reload does not invalidate every client's ticket.
package final class TicketKeyRing: @unchecked Sendable {
    /// Seconds between rotations.
    package let rotationInterval: Int
    private let lock = PThreadLock()
    private var current: TicketKey
    private var previous: TicketKey?
    private var rotations = 0

    /// A ring with a fresh random key.
    package init(rotationInterval: Int = 12 * 3600) {
        self.rotationInterval = max(1, rotationInterval)
        current = TicketKey(now: Clock.monotonicNanos())
    }

    /// Retires the previous key, demotes the current one, and makes a new current key.
    package func rotate() {
        lock.withLock { rotateLocked(now: Clock.monotonicNanos()) }
    }

    /// How many times the ring has rotated.
    package var rotationCount: Int { lock.withLock { rotations } }

    /// The key to seal a new ticket with, rotating first when it is due. The check and the
    /// rotation happen under one lock, so concurrent handshakes rotate once, not twice.
    func keyForSealing(now: UInt64) -> TicketKey {
        let due = UInt64(rotationInterval) &* 1_000_000_000
        return lock.withLock { () -> TicketKey in
            if now &- current.created >= due { rotateLocked(now: now) }
            return current
        }
    }

    private func rotateLocked(now: UInt64) {
        previous = current
        current = TicketKey(now: now)
        rotations += 1
    }

    /// The key named `name`, and whether it is the current one.
    func key(named name: UnsafePointer<UInt8>) -> (key: TicketKey, isCurrent: Bool)? {
        lock.withLock { () -> (key: TicketKey, isCurrent: Bool)? in
            if current.hasName(name) { return (current, true) }
            if let p = previous, p.hasName(name) { return (p, false) }
            return nil
        }
    }
}

/// AES-256-CBC fetched once: passing `EVP_aes_256_cbc()` would make OpenSSL 3 do an implicit
/// provider fetch on every ticket.
final class TicketCipher: @unchecked Sendable {
    static let shared = TicketCipher()
    let raw: OpaquePointer
    private init() {
        guard let c = EVP_CIPHER_fetch(nil, "AES-256-CBC", nil) else {
            fatalError("EVP_CIPHER_fetch(AES-256-CBC) failed")
        }
        raw = c
    }
}

/// `SSL_CTX_set_tlsext_ticket_key_evp_cb`. Sealing (`enc == 1`): fill name and IV, key the
/// cipher and the HMAC, return 1. Opening: 0 for an unknown name (full handshake), 1 for the
/// current key, 2 for the previous key (OpenSSL then issues a fresh ticket), -1 on error.
let ticketKeyCallback:
    @convention(c) (
        OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?, OpaquePointer?, OpaquePointer?,
        Int32
    ) -> Int32 = { ssl, keyName, iv, cipherCtx, macCtx, enc in
        guard let ssl, let keyName, let iv, let cipherCtx, let macCtx,
            let context = TLSContext.from(SSL_get_SSL_CTX(ssl)), let ring = context.ticketKeys
        else { return -1 }
        let cipher = TicketCipher.shared.raw
        if enc == 1 {
            let key = ring.keyForSealing(now: Clock.monotonicNanos())
            guard RAND_bytes(iv, Int32(EVP_CIPHER_get_iv_length(cipher))) == 1 else { return -1 }
            memcpy(keyName, key.name, TicketKey.nameLength)
            guard EVP_EncryptInit_ex(cipherCtx, cipher, nil, key.aesKey, iv) == 1,
                berth_ticket_hmac_init(macCtx, key.hmacKey, TicketKey.hmacLength) == 1
            else { return -1 }
            return 1
        }
        guard let (key, isCurrent) = ring.key(named: keyName) else { return 0 }
        guard berth_ticket_hmac_init(macCtx, key.hmacKey, TicketKey.hmacLength) == 1,
            EVP_DecryptInit_ex(cipherCtx, cipher, nil, key.aesKey, iv) == 1
        else { return -1 }
        return isCurrent ? 1 : 2
    }

internal import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// One entry of OpenSSL's per-thread error queue, decoded into strings.
package struct OpenSSLError: Sendable, Equatable, CustomStringConvertible {
    /// The packed error code (`ERR_get_error_all`).
    package var code: UInt
    /// The library that raised it, e.g. `"SSL routines"`.
    package var library: String
    /// The reason string, e.g. `"no shared cipher"`.
    package var reason: String
    /// Extra text OpenSSL attached (`ERR_TXT_STRING`), e.g. a file name.
    package var data: String?

    /// `error:0A0000C1:SSL routines::no shared cipher`, as OpenSSL prints it.
    package var description: String {
        let hex = String(code, radix: 16, uppercase: true)
        var s = "error:\(String(repeating: "0", count: max(0, 8 - hex.count)))\(hex):\(library)::\(reason)"
        if let data, !data.isEmpty { s += ":\(data)" }
        return s
    }
}

/// A TLS failure: what Berth was doing, plus everything OpenSSL queued about it.
///
/// Every OpenSSL call in this module clears the thread's error queue before it runs and drains
/// it afterwards (DESIGN §4.5), so `errors` holds only this failure's entries.
package struct TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Coarse classification for callers that branch on the failure.
    package enum Kind: Sendable, Equatable {
        /// Bad configuration: unusable protocol versions, cipher lists, ALPN names.
        case configuration
        /// A certificate or key could not be loaded, parsed, generated or written.
        case certificate
        /// The handshake failed (peer alert, no shared cipher or version, verification).
        case handshake
        /// A record-layer failure after the handshake (bad MAC, unexpected message).
        case protocolViolation
        /// The connection already failed or was shut down.
        case closed
        /// The first bytes were a plaintext HTTP request, not a TLS record; an HTTP/1.0 400
        /// response has been placed in the output buffer (Go's `net/http` does the same).
        case plaintextHTTP
        /// A file-system error (local CA storage, PEM files).
        case io
    }

    /// The classification.
    package var kind: Kind
    /// What Berth was doing, e.g. `"SSL_do_handshake"` or `"load certificate /etc/x.pem"`.
    package var message: String
    /// OpenSSL's queued errors, oldest first.
    package var errors: [OpenSSLError]

    package init(_ kind: Kind, _ message: String, errors: [OpenSSLError] = []) {
        self.kind = kind
        self.message = message
        self.errors = errors
    }

    /// Builds an error from `message` and whatever OpenSSL queued (draining the queue).
    static func drain(_ kind: Kind, _ message: String) -> TLSError {
        TLSError(kind, message, errors: OpenSSLErrorQueue.drain())
    }

    /// The reason strings, e.g. `["no shared cipher"]`.
    package var reasons: [String] { errors.map(\.reason) }

    /// True when any queued OpenSSL reason contains `text` (case-insensitive).
    package func hasReason(_ text: String) -> Bool {
        let t = text.lowercased()
        return errors.contains { $0.reason.lowercased().contains(t) } || message.lowercased().contains(t)
    }

    package var description: String {
        if errors.isEmpty { return "\(message)" }
        return "\(message): " + errors.map(\.description).joined(separator: "; ")
    }
}

/// OpenSSL's thread-local error queue.
enum OpenSSLErrorQueue {
    /// Drops anything left over from earlier calls on this thread.
    @inline(__always) static func clear() { ERR_clear_error() }

    /// Removes and decodes every queued entry.
    static func drain() -> [OpenSSLError] {
        var out: [OpenSSLError] = []
        while true {
            var data: UnsafePointer<CChar>?
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { break }
            let lib = ERR_lib_error_string(code).map { String(cString: $0) } ?? "lib(\(ERR_GET_LIB(code)))"
            let reason = ERR_reason_error_string(code).map { String(cString: $0) } ?? "reason(\(ERR_GET_REASON(code)))"
            var extra: String?
            if flags & ERR_TXT_STRING != 0, let data { extra = String(cString: data) }
            out.append(OpenSSLError(code: UInt(code), library: lib, reason: reason, data: extra))
        }
        return out
    }
}

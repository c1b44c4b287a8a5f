import JSON
/// An ACME problem document (RFC 8555 §6.7, RFC 7807): what the CA says went wrong.
package struct ACMEProblem: Sendable, Equatable, CustomStringConvertible {
    /// `urn:ietf:params:acme:error:<name>` for ACME's own types (RFC 8555 §6.7).
    package var type: String
    /// Human-readable explanation.
    package var detail: String
    /// HTTP status the CA answered with (or that the document states).
    package var status: Int
    /// The identifier a subproblem is about (RFC 8555 §6.7.1).
    package var identifier: String?
    /// Per-identifier problems (RFC 8555 §6.7.1), e.g. one per failed name of an order.
    package var subproblems: [ACMEProblem]

    package init(type: String, detail: String, status: Int, identifier: String? = nil, subproblems: [ACMEProblem] = []) {
        self.type = type
        self.detail = detail
        self.status = status
        self.identifier = identifier
        self.subproblems = subproblems
    }

    /// Reads a problem document; nil when `json` is not one.
    package init?(_ json: JSONValue, status: Int) {
        guard let t = json["type"]?.stringValue else { return nil }
        type = t
        detail = json["detail"]?.stringValue ?? ""
        self.status = json["status"]?.intValue ?? status
        identifier = json["identifier"]?["value"]?.stringValue
        subproblems = (json["subproblems"]?.arrayValue ?? []).compactMap { ACMEProblem($0, status: status) }
    }

    /// The part after `urn:ietf:params:acme:error:` (`badNonce`, `rateLimited`, …), or the
    /// whole type for other namespaces.
    package var shortType: String {
        let prefix = "urn:ietf:params:acme:error:"
        return type.hasPrefix(prefix) ? String(type.dropFirst(prefix.count)) : type
    }

    /// RFC 8555 §6.5: retry the request with a fresh nonce.
    package var isBadNonce: Bool { shortType == "badNonce" }
    /// RFC 8555 §6.6: the CA's rate limits; `Retry-After` says when to come back.
    package var isRateLimited: Bool { shortType == "rateLimited" }

    package var description: String {
        var s = "\(shortType) (HTTP \(status))"
        if let identifier { s += " for \(identifier)" }
        if !detail.isEmpty { s += ": \(detail)" }
        for p in subproblems { s += "; \(p)" }
        return s
    }
}

/// Why an ACME operation failed.
package enum ACMEError: Error, Sendable, CustomStringConvertible {
    /// No usable response: DNS, connect, TLS, timeout, malformed HTTP.
    case transport(String)
    /// The CA answered with a problem document. `retryAfter` (seconds) from the response,
    /// when it said (rate limits, RFC 8555 §6.6).
    case problem(ACMEProblem, retryAfter: Int?)
    /// A response that does not follow RFC 8555 (missing fields, unexpected status).
    case protocolViolation(String)
    /// A challenge or order ended `invalid` (RFC 8555 §7.1.6); the problem says why.
    case validationFailed(identifier: String, challenge: String, problem: ACMEProblem?)
    /// Bad local settings (CA URL, trust roots, EAB key) — retrying will not help.
    case configuration(String)
    /// Keys, signatures, CSR.
    case crypto(String)
    /// Storage: reading or writing the data directory.
    case storage(String)
    /// The manager was stopped while waiting.
    case cancelled

    package var description: String {
        switch self {
        case .transport(let s): return "ACME transport error: \(s)"
        case .problem(let p, let after):
            return "ACME server error: \(p)" + (after.map { " (retry after \($0)s)" } ?? "")
        case .protocolViolation(let s): return "ACME protocol error: \(s)"
        case .validationFailed(let id, let ch, let p):
            return "challenge \(ch) for \(id) failed" + (p.map { ": \($0)" } ?? "")
        case .configuration(let s): return "ACME configuration error: \(s)"
        case .crypto(let s): return "ACME crypto error: \(s)"
        case .storage(let s): return "ACME storage error: \(s)"
        case .cancelled: return "ACME operation cancelled"
        }
    }

    /// The problem document, when there is one.
    package var problem: ACMEProblem? {
        switch self {
        case .problem(let p, _): return p
        case .validationFailed(_, _, let p): return p
        default: return nil
        }
    }

    /// Seconds the CA asked us to wait, when it did.
    package var retryAfter: Int? {
        if case .problem(_, let r) = self { return r }
        return nil
    }
}

extension ACMECryptoError {
    var acme: ACMEError { .crypto(description) }
}

#if canImport(Glibc)
import JSON
import Glibc
#endif

/// The directory object (RFC 8555 §7.1.1): the URL of every other resource.
package struct ACMEDirectory: Sendable, Equatable {
    package var newNonce: String
    package var newAccount: String
    package var newOrder: String
    package var revokeCert: String?
    package var keyChange: String?
    /// `meta.termsOfService`.
    package var termsOfService: String?
    /// `meta.externalAccountRequired` (RFC 8555 §7.3.4).
    package var externalAccountRequired: Bool

    package init?(_ json: JSONValue) {
        guard let nonce = json["newNonce"]?.stringValue, let account = json["newAccount"]?.stringValue,
            let order = json["newOrder"]?.stringValue
        else { return nil }
        newNonce = nonce
        newAccount = account
        newOrder = order
        revokeCert = json["revokeCert"]?.stringValue
        keyChange = json["keyChange"]?.stringValue
        termsOfService = json["meta"]?["termsOfService"]?.stringValue
        externalAccountRequired = json["meta"]?["externalAccountRequired"]?.boolValue ?? false
    }
}

/// An identifier (RFC 8555 §9.7.7): `dns` names, or `ip` addresses (RFC 8738).
package struct ACMEIdentifier: Sendable, Equatable, CustomStringConvertible {
    package var type: String
    package var value: String

    package init(type: String, value: String) {
        self.type = type
        self.value = value
    }

    /// `dns` for names, `ip` for IP literals.
    package init(_ name: String) {
        if IPLiteral.isIP(name) {
            self.init(type: "ip", value: IPLiteral.strip(name))
        } else {
            self.init(type: "dns", value: name)
        }
    }

    init?(_ json: JSONValue?) {
        guard let t = json?["type"]?.stringValue, let v = json?["value"]?.stringValue else { return nil }
        self.init(type: t, value: v)
    }

    var json: JSONValue { .object([("type", .string(type)), ("value", .string(value))]) }
    package var description: String { value }
}

/// An order (RFC 8555 §7.1.3).
package struct ACMEOrder: Sendable {
    /// The order's URL (`Location` of newOrder).
    package var url: String
    /// `pending`, `ready`, `processing`, `valid`, `invalid` (§7.1.6).
    package var status: String
    package var identifiers: [ACMEIdentifier]
    package var authorizations: [String]
    package var finalize: String
    package var certificate: String?
    package var error: ACMEProblem?

    init(url: String, _ json: JSONValue, status httpStatus: Int) throws(ACMEError) {
        guard let s = json["status"]?.stringValue, let f = json["finalize"]?.stringValue else {
            throw .protocolViolation("order \(url) lacks status or finalize")
        }
        self.url = url
        status = s
        identifiers = (json["identifiers"]?.arrayValue ?? []).compactMap { ACMEIdentifier($0) }
        authorizations = (json["authorizations"]?.arrayValue ?? []).compactMap(\.stringValue)
        finalize = f
        certificate = json["certificate"]?.stringValue
        error = json["error"].flatMap { ACMEProblem($0, status: httpStatus) }
    }
}

/// A challenge (RFC 8555 §7.1.5, §8).
package struct ACMEChallenge: Sendable {
    /// `http-01`, `tls-alpn-01`, `dns-01`, …
    package var type: String
    package var url: String
    /// `pending`, `processing`, `valid`, `invalid`.
    package var status: String
    package var token: String
    package var error: ACMEProblem?

    init?(_ json: JSONValue, status httpStatus: Int) {
        guard let t = json["type"]?.stringValue, let u = json["url"]?.stringValue else { return nil }
        type = t
        url = u
        status = json["status"]?.stringValue ?? "pending"
        token = json["token"]?.stringValue ?? ""
        error = json["error"].flatMap { ACMEProblem($0, status: httpStatus) }
    }
}

/// An authorization (RFC 8555 §7.1.4).
package struct ACMEAuthorization: Sendable {
    package var url: String
    package var identifier: ACMEIdentifier
    /// `pending`, `valid`, `invalid`, `deactivated`, `expired`, `revoked`.
    package var status: String
    package var wildcard: Bool
    package var challenges: [ACMEChallenge]

    init(url: String, _ json: JSONValue, status httpStatus: Int) throws(ACMEError) {
        guard let id = ACMEIdentifier(json["identifier"]), let s = json["status"]?.stringValue else {
            throw .protocolViolation("authorization \(url) lacks identifier or status")
        }
        self.url = url
        identifier = id
        status = s
        wildcard = json["wildcard"]?.boolValue ?? false
        challenges = (json["challenges"]?.arrayValue ?? []).compactMap { ACMEChallenge($0, status: httpStatus) }
    }

    /// The problem of the challenge that failed, if any (RFC 8555 §7.1.4: an invalid
    /// authorization's challenge carries the error).
    package var failure: (challenge: String, problem: ACMEProblem?)? {
        guard status == "invalid" else { return nil }
        if let c = challenges.first(where: { $0.status == "invalid" || $0.error != nil }) { return (c.type, c.error) }
        return ("?", nil)
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; nil when absent or
/// unreadable. Negative results (a date in the past) become 0.
package enum RetryAfter {
    package static func seconds(_ value: String?, now: Int) -> Int? {
        guard let v = value?.trimmingSpaces(), !v.isEmpty else { return nil }
        if let n = Int(v) { return max(0, n) }
        // IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
        let parts = v.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
            let year = Int(parts[3])
        else { return nil }
        let hms = parts[4].split(separator: ":")
        guard hms.count == 3, let h = Int(hms[0]), let m = Int(hms[1]), let s = Int(hms[2]) else { return nil }
        var tm = Glibc.tm()
        tm.tm_year = Int32(year - 1900)
        tm.tm_mon = Int32(month)
        tm.tm_mday = Int32(day)
        tm.tm_hour = Int32(h)
        tm.tm_min = Int32(m)
        tm.tm_sec = Int32(s)
        return max(0, Int(timegm(&tm)) - now)
    }
}

/// Where a bind address sits in the configuration, for error messages.
package struct BindSite: Equatable, Sendable {
    /// `file:line` of the address (`Caddyfile:6`), or empty when unknown (JSON config).
    package var location: String
    /// The directive or option that holds it: `bind`, `default_bind`…
    package var directive: String
    /// The address as written: `fd/3`, `fdname/https/1`.
    package var address: String

    package init(location: String, directive: String = "bind", address: String) {
        self.location = location
        self.directive = directive
        self.address = address
    }

    /// `Caddyfile:6: bind fd/9`.
    package var prefix: String {
        location.isEmpty ? "\(directive) \(address)" : "\(location): \(directive) \(address)"
    }
}

/// A bind address that names inherited descriptors.
///
/// - `fd/N`: one listening stream socket, by number (Caddy's form).
/// - `fdgram/N`: one datagram socket, by number (Caddy's form).
/// - `fdname/NAME`: every listening stream socket named `NAME` in `LISTEN_FDNAMES`.
/// - `fdgramname/NAME`: every datagram socket named `NAME`.
/// - `fdname/NAME/K`, `fdgramname/NAME/K`: only the `K`-th (0-based, fd order) of them.
///
/// `N` is read like Go's `strconv.ParseUint(s, 0, 64)`, as Caddy does: decimal, `0x1f`,
/// `0o17` or `017`, `0b101`, with `_` between digits. With the name forms, a trailing
/// `/<digits>` is the index; a name that itself contains `/` therefore needs an explicit
/// index (`fdname/a/b/0`).
package enum BindTarget: Equatable, Sendable, CustomStringConvertible {
    case stream(fd: Int32)
    case datagram(fd: Int32)
    case streamNamed(String, index: Int?)
    case datagramNamed(String, index: Int?)

    /// True for the datagram forms.
    package var isDatagram: Bool {
        switch self {
        case .datagram, .datagramNamed: return true
        case .stream, .streamNamed: return false
        }
    }

    /// The canonical spelling: `fd/3`, `fdgramname/quic/0`.
    package var description: String {
        switch self {
        case .stream(let fd): return "fd/\(fd)"
        case .datagram(let fd): return "fdgram/\(fd)"
        case .streamNamed(let name, let index): return "fdname/\(name)" + (index.map { "/\($0)" } ?? "")
        case .datagramNamed(let name, let index): return "fdgramname/\(name)" + (index.map { "/\($0)" } ?? "")
        }
    }

    /// True when `address`'s network (before the first `/`, case-insensitive) is one of
    /// `fd`, `fdgram`, `fdname`, `fdgramname`.
    package static func isInheritedAddress(_ address: String) -> Bool {
        network(of: address) != nil
    }

    /// Parses `address`; nil when it is not one of the four forms (a host:port, `unix/…`…).
    /// Throws when it is one of them but malformed (`fd/abc`, `fdname/`).
    package static func parse(_ address: String, site: BindSite) throws(BindError) -> BindTarget? {
        guard let (network, rest) = network(of: address) else { return nil }
        switch network {
        case "fd", "fdgram":
            let fd: Int32
            switch GoUint.parse(rest) {
            case .success(let n) where n <= UInt64(Int32.max):
                fd = Int32(n)
            case .success:
                throw .invalidFileDescriptor(site, text: rest, reason: .outOfRange)
            case .failure(let reason):
                throw .invalidFileDescriptor(site, text: rest, reason: reason)
            }
            return network == "fd" ? .stream(fd: fd) : .datagram(fd: fd)
        default:
            var name = Substring(rest)
            var index: Int? = nil
            if let slash = rest.lastIndex(of: "/") {
                let indexText = rest[rest.index(after: slash)...]
                guard let k = SocketActivation.parseDecimal(String(indexText)) else {
                    throw .invalidName(
                        site, reason: "\"\(indexText)\" is not a socket index (write \(network)/NAME/0, /1…)")
                }
                index = k
                name = rest[..<slash]
            }
            guard !name.isEmpty else {
                throw .invalidName(
                    site, reason: "missing socket name (write \(network)/NAME, NAME as in FileDescriptorName=)")
            }
            return network == "fdname"
                ? .streamNamed(String(name), index: index) : .datagramNamed(String(name), index: index)
        }
    }

    private static func network(of address: String) -> (String, String)? {
        guard let slash = address.firstIndex(of: "/") else { return nil }
        let network = address[..<slash].lowercased()
        guard ["fd", "fdgram", "fdname", "fdgramname"].contains(network) else { return nil }
        return (network, String(address[address.index(after: slash)...]))
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
package enum GoUint {
    /// Why a number did not parse.
    package enum Failure: Error, Equatable, Sendable {
        /// Not a number in any accepted form (Go: "invalid syntax").
        case syntax
        /// Too large (Go: "value out of range"; Berth also for values above `Int32.max`).
        case outOfRange
    }

    /// Parses `text` with a base prefix: `0x`/`0X` hex, `0o`/`0O` or a leading `0` octal,
    /// `0b`/`0B` binary, otherwise decimal; `_` is allowed between digits and after a prefix.
    package static func parse(_ text: String) -> Result<UInt64, Failure> {
        let all = Array(text.utf8)
        guard let first = all.first else { return .failure(.syntax) }
        var base: UInt64 = 10
        var digits = all[...]
        if first == UInt8(ascii: "0") {
            let second = all.count >= 3 ? lower(all[1]) : 0
            switch second {
            case UInt8(ascii: "b"): base = 2; digits = all[2...]
            case UInt8(ascii: "o"): base = 8; digits = all[2...]
            case UInt8(ascii: "x"): base = 16; digits = all[2...]
            default: base = 8; digits = all[1...]
            }
        }
        var underscores = false
        var n: UInt64 = 0
        let cutoff = UInt64.max / base + 1
        for c in digits {
            let d: UInt64
            if c == UInt8(ascii: "_") {
                underscores = true
                continue
            } else if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                d = UInt64(c - UInt8(ascii: "0"))
            } else if lower(c) >= UInt8(ascii: "a"), lower(c) <= UInt8(ascii: "z") {
                d = UInt64(lower(c) - UInt8(ascii: "a")) + 10
            } else {
                return .failure(.syntax)
            }
            if d >= base { return .failure(.syntax) }
            if n >= cutoff { return .failure(.outOfRange) }
            n *= base
            let (sum, overflow) = n.addingReportingOverflow(d)
            if overflow { return .failure(.outOfRange) }
            n = sum
        }
        if underscores, !underscoreOK(all) { return .failure(.syntax) }
        return .success(n)
    }

    private static func lower(_ c: UInt8) -> UInt8 { c | 0x20 }

    /// Go's `underscoreOK`: underscores only between digits, or between a base prefix and a digit.
    private static func underscoreOK(_ s: [UInt8]) -> Bool {
        var saw = UInt8(ascii: "^")
        var i = 0
        var hex = false
        if s.count >= 2, s[0] == UInt8(ascii: "0"),
            [UInt8(ascii: "b"), UInt8(ascii: "o"), UInt8(ascii: "x")].contains(lower(s[1]))
        {
            i = 2
            saw = UInt8(ascii: "0")
            hex = lower(s[1]) == UInt8(ascii: "x")
        }
        while i < s.count {
            let c = s[i]
            i += 1
            if (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                || (hex && lower(c) >= UInt8(ascii: "a") && lower(c) <= UInt8(ascii: "f"))
            {
                saw = UInt8(ascii: "0")
                continue
            }
            if c == UInt8(ascii: "_") {
                if saw != UInt8(ascii: "0") { return false }
                saw = UInt8(ascii: "_")
                continue
            }
            if saw == UInt8(ascii: "_") { return false }
            saw = UInt8(ascii: "!")
        }
        return saw != UInt8(ascii: "_")
    }
}

/// A bind address that cannot be served from the inherited descriptors. Start-up fails with
/// it (a reload keeps the old configuration). The description names the configuration
/// location, the address, the descriptor and what it is, and what was inherited.
package enum BindError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `fd/abc`, `fd/0x`, `fd/99999999999`.
    case invalidFileDescriptor(BindSite, text: String, reason: GoUint.Failure)
    /// `fdname/` (no name) or `fdname/web/x` (bad index).
    case invalidName(BindSite, reason: String)
    /// The number is not among the inherited descriptors.
    case notInherited(BindSite, fd: Int32, inherited: InheritedSockets)
    /// `LISTEN_FDS` covered the number but nothing is open there.
    case notOpen(BindSite, fd: Int32, inherited: InheritedSockets)
    /// A file, pipe, terminal… rather than a socket.
    case notASocket(BindSite, InheritedFD, inherited: InheritedSockets)
    /// A socket of the wrong type: datagram for `fd/`, stream for `fdgram/`, seqpacket…
    case wrongSocketType(BindSite, InheritedFD, wanted: BindTarget, inherited: InheritedSockets)
    /// A stream socket on which `listen` was never called (e.g. a connection from `Accept=yes`).
    case notListening(BindSite, InheritedFD, inherited: InheritedSockets)
    /// No socket of the right kind has the name. `sameName` are those that have it but are of
    /// another kind.
    case nameNotFound(BindSite, name: String, sameName: [InheritedFD], wanted: BindTarget, inherited: InheritedSockets)
    /// `fdname/NAME/K` with `K` at or beyond the number of matching sockets.
    case indexOutOfRange(BindSite, name: String, index: Int, matches: [InheritedFD], wanted: BindTarget)

    /// The site the error is about.
    package var site: BindSite {
        switch self {
        case .invalidFileDescriptor(let s, _, _), .invalidName(let s, _), .notInherited(let s, _, _),
            .notOpen(let s, _, _), .notASocket(let s, _, _), .wrongSocketType(let s, _, _, _),
            .notListening(let s, _, _), .nameNotFound(let s, _, _, _, _), .indexOutOfRange(let s, _, _, _, _):
            return s
        }
    }

    package var description: String {
        site.prefix + ": " + problem
    }

    /// The message without the `location: bind address: ` prefix.
    package var problem: String {
        switch self {
        case .invalidFileDescriptor(_, let text, let reason):
            switch reason {
            case .syntax:
                return "invalid file descriptor: \"\(text)\" is not a number (write it as 3, 0x3, 0o3 or 0b11)"
            case .outOfRange:
                return "invalid file descriptor: \(text) is out of range"
            }

        case .invalidName(_, let reason):
            return reason

        case .notInherited(_, let fd, let inherited):
            var s = "file descriptor \(fd) was not inherited"
            if fd >= 0, fd < inherited.firstFD {
                let std = ["standard input", "standard output", "standard error"]
                let what = fd < 3 ? " (fd \(fd) is \(std[Int(fd)]))" : ""
                s += "; inherited descriptors start at fd \(inherited.firstFD)\(what)"
            }
            return s + "; " + inherited.inventory

        case .notOpen(_, let fd, let inherited):
            return "file descriptor \(fd) is listed in LISTEN_FDS but is not open; " + inherited.inventory

        case .notASocket(_, let d, let inherited):
            var what = "unknown"
            if case .file(let kind, let path) = d.kind {
                what = path.map { "\(kind), \($0)" } ?? kind.description
            }
            return "fd \(d.fd) is not a socket (it is \(what)); " + inherited.inventory

        case .wrongSocketType(_, let d, let wanted, let inherited):
            return Self.wrongType(d, wanted: wanted) + "; " + inherited.inventory

        case .notListening(_, let d, let inherited):
            return "fd \(d.fd) is a stream socket that is not listening (berth needs a listening socket:"
                + " ListenStream= with Accept=no); " + inherited.inventory

        case .nameNotFound(_, let name, let sameName, let wanted, let inherited):
            let kind = wanted.isDatagram ? "datagram socket" : "stream listening socket"
            var s = "no inherited \(kind) is named \"\(name)\""
            if !sameName.isEmpty {
                let list = sameName.map { "fd \($0.fd) is \($0.what)" }.joined(separator: ", ")
                s += " (\(list))"
                let other = wanted.isDatagram ? sameName.contains(where: \.isStreamListener) : sameName.contains(where: \.isDatagram)
                if other { s += "; use \(wanted.isDatagram ? "fdname" : "fdgramname")/\(name)" }
            }
            return s + "; " + Self.names(inherited)

        case .indexOutOfRange(_, let name, let index, let matches, let wanted):
            let kind = wanted.isDatagram ? "datagram socket" : "stream listening socket"
            let fds = matches.map { "fd \($0.fd)" }.joined(separator: ", ")
            let plural = matches.count == 1 ? "\(kind) is" : "\(kind)s are"
            let range = matches.count == 1 ? "0" : "0 to \(matches.count - 1)"
            return "index \(index) is out of range: \(matches.count) \(plural) named \"\(name)\" (\(fds)),"
                + " so the index must be \(range) (counting from 0)"
        }
    }

    private static func wrongType(_ d: InheritedFD, wanted: BindTarget) -> String {
        guard let info = d.socket else { return "fd \(d.fd) is \(d.what)" }
        switch (info.type, wanted.isDatagram) {
        case (.datagram, false):
            return "fd \(d.fd) is a datagram socket, not a stream socket; use fdgram/\(d.fd)"
        case (.stream, true):
            let hint = info.isListening ? "; use fd/\(d.fd)" : ""
            return "fd \(d.fd) is a stream socket, not a datagram socket\(hint)"
        default:
            let needs = wanted.isDatagram
                ? "fdgram/ needs a datagram socket (ListenDatagram=)"
                : "fd/ needs a listening stream socket (ListenStream=)"
            return "fd \(d.fd) is a \(info.type) socket; \(needs)"
        }
    }

    /// `inherited names: "http" (fd 3), "https" (fd 4, fd 5)`, or why there are none.
    private static func names(_ inherited: InheritedSockets) -> String {
        switch inherited.source {
        case .probed:
            return "LISTEN_FDS is not set, so no descriptor has a name (names come from FileDescriptorName="
                + " in the .socket unit, passed by systemd socket activation in LISTEN_FDNAMES)"
        case .rejected(let problem):
            return "nothing was adopted because " + problem.description
        case .listenFDs(let count):
            if count == 0 { return "nothing was inherited (LISTEN_FDS=0)" }
            var order: [String] = []
            var fds: [String: [String]] = [:]
            for d in inherited.descriptors {
                if fds[d.name] == nil { order.append(d.name) }
                fds[d.name, default: []].append("fd \(d.fd) \(d.what)")
            }
            let list = order.map { "\"\($0)\" (\(fds[$0, default: []].joined(separator: ", ")))" }
            return "inherited names: " + list.joined(separator: ", ")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// The type of a socket, read with `getsockopt(SO_TYPE)`.
package enum SocketType: Equatable, Sendable, CustomStringConvertible {
    /// `SOCK_STREAM` (`ListenStream=`): TCP or a unix stream socket.
    case stream
    /// `SOCK_DGRAM` (`ListenDatagram=`): UDP or a unix datagram socket.
    case datagram
    /// `SOCK_SEQPACKET` (`ListenSequentialPacket=`).
    case seqpacket
    /// `SOCK_RAW`.
    case raw
    /// Any other `SO_TYPE` value.
    case other(Int32)

    /// Maps an `SO_TYPE` value.
    package init(soType: Int32) {
        switch soType {
        case Int32(SOCK_STREAM.rawValue): self = .stream
        case Int32(SOCK_DGRAM.rawValue): self = .datagram
        case Int32(SOCK_SEQPACKET.rawValue): self = .seqpacket
        case Int32(SOCK_RAW.rawValue): self = .raw
        default: self = .other(soType)
        }
    }

    package var description: String {
        switch self {
        case .stream: return "stream"
        case .datagram: return "datagram"
        case .seqpacket: return "seqpacket"
        case .raw: return "raw"
        case .other(let n): return "type-\(n)"
        }
    }
}

/// What an open descriptor that is not a socket is, read with `fstat`.
package enum FileKind: Equatable, Sendable, CustomStringConvertible {
    case regularFile
    case directory
    /// A pipe or FIFO.
    case pipe
    /// A character device that `isatty` accepts.
    case terminal
    /// Any other character device (`/dev/null`…).
    case characterDevice
    case blockDevice
    case symbolicLink
    /// No file type bits: an anonymous inode such as an epoll, eventfd or timerfd instance.
    case other

    /// With an article, for messages: "a regular file", "a pipe"…
    package var description: String {
        "a " + name
    }

    /// Without an article: "regular file", "pipe"…
    package var name: String {
        switch self {
        case .regularFile: return "regular file"
        case .directory: return "directory"
        case .pipe: return "pipe"
        case .terminal: return "terminal"
        case .characterDevice: return "character device"
        case .blockDevice: return "block device"
        case .symbolicLink: return "symbolic link"
        case .other: return "special file"
        }
    }
}

/// What a socket is: its type, whether it listens, its family and its local address.
package struct SocketInfo: Equatable, Sendable {
    /// `SO_TYPE`.
    package var type: SocketType
    /// `SO_DOMAIN`: `AF_INET`, `AF_INET6`, `AF_UNIX`…
    package var family: Int32
    /// `SO_ACCEPTCONN`: `listen(2)` was called on it.
    package var isListening: Bool
    /// `getsockname`, or nil when the kernel did not give one Berth can read.
    package var localAddress: SocketAddress?
    /// For IPv6 sockets, true when `IPV6_V6ONLY` is off so IPv4 clients reach it too
    /// (`BindIPv6Only=both`); nil for other families.
    package var isDualStack: Bool?

    package init(
        type: SocketType, family: Int32, isListening: Bool, localAddress: SocketAddress?, isDualStack: Bool?
    ) {
        self.type = type
        self.family = family
        self.isListening = isListening
        self.localAddress = localAddress
        self.isDualStack = isDualStack
    }

    /// For messages: `stream listening [::]:8080 (dual-stack)`, `datagram 0.0.0.0:443`,
    /// `stream listening unix//run/berth.sock`.
    package var description: String {
        var s = type.description
        switch type {
        case .stream, .seqpacket: s += isListening ? " listening" : " not listening"
        default: break
        }
        s += " " + addressDescription
        return s
    }

    /// The local address with its family, for messages.
    package var addressDescription: String {
        guard let address = localAddress else {
            return "(\(SocketInfo.familyName(family)), address unknown)"
        }
        switch address {
        case .unix(let path) where path.isEmpty:
            return "unix (unnamed)"
        case .v6:
            switch isDualStack {
            case true?: return address.description + " (dual-stack)"
            case false?: return address.description + " (IPv6 only)"
            case nil: return address.description
            }
        default:
            return address.description
        }
    }

    /// A readable name for an address family.
    package static func familyName(_ family: Int32) -> String {
        switch family {
        case AF_INET: return "IPv4"
        case AF_INET6: return "IPv6"
        case AF_UNIX: return "unix"
        case AF_NETLINK: return "netlink"
        case AF_PACKET: return "packet"
        case AF_VSOCK: return "vsock"
        default: return "family \(family)"
        }
    }
}

/// What an inherited descriptor turned out to be.
package enum FDKind: Equatable, Sendable {
    /// `fstat` said `EBADF`: nothing is open at that number.
    case notOpen
    /// A socket.
    case socket(SocketInfo)
    /// Open, but not a socket. `path` is the `/proc/self/fd` link when it helps (files,
    /// devices, `anon_inode:[eventpoll]`).
    case file(FileKind, path: String?)
}

/// One descriptor handed over at start-up, with what it is.
///
/// Berth never closes inherited descriptors: they live as long as the process, so a reload
/// keeps serving on them (like Caddy, which keeps the original `*os.File` forever).
package struct InheritedFD: Equatable, Sendable, CustomStringConvertible {
    /// The descriptor number.
    package var fd: Int32
    /// Its name from `LISTEN_FDNAMES` (`FileDescriptorName=`; systemd's default is the socket
    /// unit's name), or `"unknown"` when none was given.
    package var name: String
    /// What it is.
    package var kind: FDKind

    package init(fd: Int32, name: String, kind: FDKind) {
        self.fd = fd
        self.name = name
        self.kind = kind
    }

    /// The name systemd uses for descriptors without one.
    package static let unknownName = "unknown"

    /// The socket details, or nil when it is not a socket.
    package var socket: SocketInfo? {
        if case .socket(let info) = kind { return info }
        return nil
    }

    /// True for a listening `SOCK_STREAM` socket: what `fd/N` and `fdname/NAME` accept.
    package var isStreamListener: Bool {
        guard let s = socket else { return false }
        return s.type == .stream && s.isListening
    }

    /// True for a `SOCK_DGRAM` socket: what `fdgram/N` and `fdgramname/NAME` accept.
    package var isDatagram: Bool {
        socket?.type == .datagram
    }

    /// `fd 3 "caddy.socket" stream listening [::]:8080 (dual-stack)`.
    package var description: String {
        describe(includingName: true)
    }

    /// Like `description`; without the name when names are meaningless (no `LISTEN_FDNAMES`).
    package func describe(includingName: Bool) -> String {
        var s = "fd \(fd)"
        if includingName { s += " \"\(name)\"" }
        return s + " " + what
    }

    /// What it is, without the number: `stream listening [::]:8080`, `regular file /etc/x`.
    package var what: String {
        switch kind {
        case .notOpen:
            return "not open"
        case .socket(let info):
            return info.description
        case .file(let kind, let path):
            return path.map { kind.name + " " + $0 } ?? kind.name
        }
    }
}

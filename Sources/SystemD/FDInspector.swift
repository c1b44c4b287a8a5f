#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// Finds out what a descriptor is, with `fstat`, `getsockopt` and `getsockname`. Never
/// changes the descriptor.
package enum FDInspector {
    /// What `fd` is right now.
    package static func inspect(_ fd: Int32) -> FDKind {
        var st = stat()
        if fstat(fd, &st) != 0 {
            return errno == EBADF ? .notOpen : .file(.other, path: procLink(fd))
        }
        switch st.st_mode & S_IFMT {
        case S_IFSOCK:
            return .socket(socketInfo(fd))
        case S_IFREG:
            return .file(.regularFile, path: procLink(fd))
        case S_IFDIR:
            return .file(.directory, path: procLink(fd))
        case S_IFIFO:
            return .file(.pipe, path: nil)
        case S_IFCHR:
            return .file(isatty(fd) == 1 ? .terminal : .characterDevice, path: procLink(fd))
        case S_IFBLK:
            return .file(.blockDevice, path: procLink(fd))
        case S_IFLNK:
            return .file(.symbolicLink, path: procLink(fd))
        default:
            return .file(.other, path: procLink(fd))
        }
    }

    /// Type, family, listening state and local address of a socket.
    package static func socketInfo(_ fd: Int32) -> SocketInfo {
        let type = intOption(fd, SOL_SOCKET, SO_TYPE).map(SocketType.init(soType:)) ?? .other(-1)
        let listening = (intOption(fd, SOL_SOCKET, SO_ACCEPTCONN) ?? 0) != 0
        var address = localAddress(fd)
        let family = intOption(fd, SOL_SOCKET, SO_DOMAIN) ?? address?.family ?? -1
        if family == AF_UNIX, address == nil { address = .unix(path: "") }
        var dualStack: Bool? = nil
        if family == AF_INET6, let v6only = intOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY) {
            dualStack = v6only == 0
        }
        return SocketInfo(
            type: type, family: family, isListening: listening, localAddress: address, isDualStack: dualStack)
    }

    /// `getsockname`, or nil.
    package static func localAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard r == 0, length >= socklen_t(MemoryLayout<sa_family_t>.size) else { return nil }
        return withUnsafeBytes(of: &storage) { raw -> SocketAddress? in
            guard let base = raw.baseAddress else { return nil }
            return SocketAddress(storage: base, length: Int(length))
        }
    }

    /// An `int`-valued socket option, or nil when `getsockopt` fails.
    package static func intOption(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, level, name, &value, &length) == 0 ? value : nil
    }

    /// The target of `/proc/self/fd/N` (a path, `anon_inode:[eventpoll]`…), or nil.
    package static func procLink(_ fd: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The descriptors at or above `firstFD` that are open now, in ascending order. Reads
    /// `/proc/self/fd`; without `/proc`, asks `fcntl(F_GETFD)` up to the descriptor limit
    /// (at most 4096).
    package static func openDescriptors(from firstFD: Int32) -> [Int32] {
        if let fds = procDescriptors(from: firstFD) { return fds }
        var limit = rlimit()
        var top: Int32 = 1024
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            top = Int32(clamping: min(limit.rlim_cur, 4096))
        }
        guard firstFD < top else { return [] }
        return (firstFD..<top).filter { fcntl($0, F_GETFD) >= 0 }
    }

    private static func procDescriptors(from firstFD: Int32) -> [Int32]? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        let own = dirfd(dir)
        var fds: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.prefix(while: { $0 != 0 })
                return String(decoding: bytes, as: UTF8.self)
            }
            guard let fd = Int32(name), fd >= firstFD, fd != own else { continue }
            fds.append(fd)
        }
        return fds.sorted()
    }
}

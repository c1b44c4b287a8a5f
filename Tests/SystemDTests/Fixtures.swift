import Glibc
import Synchronization
import Testing

@testable import SystemD

/// Hands out disjoint ranges of 10 descriptor numbers, high enough (600+) not to collide with
/// the descriptors the runner and other tests open, so tests can run in parallel.
private let nextRange = Atomic<Int32>(600)

/// Descriptors placed at chosen numbers with `dup2`, closed when the fixture goes away.
final class PlacedFDs {
    /// The first number of this fixture's range: pass it as `firstFD`.
    let base: Int32
    private(set) var placed: [Int32] = []

    init() {
        base = nextRange.wrappingAdd(10, ordering: .relaxed).oldValue
    }

    /// Moves `source` to `base + slot` (closing `source`) and returns the new number. `dup2`
    /// clears FD_CLOEXEC, and the file status flags (O_NONBLOCK) are those of `source`.
    @discardableResult
    func place(_ source: Int32, slot: Int32) -> Int32 {
        precondition(source >= 0, "fixture socket failed: \(String(cString: strerror(errno)))")
        let target = base + slot
        precondition(slot < 10 && dup2(source, target) == target)
        close(source)
        placed.append(target)
        return target
    }

    /// `LISTEN_PID` (this process), `LISTEN_FDS` and, when given, `LISTEN_FDNAMES`.
    func environment(count: Int, names: [String]? = nil) -> [String: String] {
        var env = ["LISTEN_PID": "\(getpid())", "LISTEN_FDS": "\(count)"]
        if let names { env["LISTEN_FDNAMES"] = names.joined(separator: ":") }
        return env
    }

    /// Adopts `count` descriptors from `base` as systemd would pass them.
    func adopt(count: Int, names: [String]? = nil) -> InheritedSockets {
        SocketActivation.adopt(environment: environment(count: count, names: names), pid: getpid(), firstFD: base)
    }

    deinit {
        for fd in placed { close(fd) }
    }
}

/// Real sockets and files for the fixtures. Each returns a fresh descriptor (blocking, no
/// close-on-exec) or crashes the test run on failure.
enum Make {
    static func tcpListener4() -> Int32 {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        bindOrDie(s, &a)
        precondition(listen(s, 16) == 0)
        return s
    }

    /// `[::]:0` with IPV6_V6ONLY off, like `BindIPv6Only=both`.
    static func tcpListenerDualStack() -> Int32 {
        let s = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        var off: Int32 = 0
        precondition(setsockopt(s, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size)) == 0)
        var a = sockaddr_in6()
        a.sin6_family = sa_family_t(AF_INET6)
        a.sin6_addr = in6addr_any
        bindOrDie(s, &a)
        precondition(listen(s, 16) == 0)
        return s
    }

    /// `[::1]:0` with IPV6_V6ONLY on.
    static func udp6Only() -> Int32 {
        let s = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue), 0)
        var on: Int32 = 1
        precondition(setsockopt(s, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size)) == 0)
        var a = sockaddr_in6()
        a.sin6_family = sa_family_t(AF_INET6)
        a.sin6_addr = in6addr_loopback
        bindOrDie(s, &a)
        return s
    }

    static func udp4() -> Int32 {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        bindOrDie(s, &a)
        return s
    }

    /// A TCP socket bound to 127.0.0.1:0 on which `listen` was never called.
    static func tcpNotListening() -> Int32 {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        bindOrDie(s, &a)
        return s
    }

    /// A listening unix socket of `type` at the abstract name `@name`.
    static func unixListener(abstract name: String, type: __socket_type = SOCK_STREAM) -> Int32 {
        let s = socket(AF_UNIX, Int32(type.rawValue), 0)
        var a = unixAddress("@" + name)
        let len = socklen_t(MemoryLayout<sa_family_t>.size + 1 + name.utf8.count)
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
        precondition(r == 0)
        precondition(listen(s, 16) == 0)
        return s
    }

    /// A regular file (created and unlinked) and its former path.
    static func regularFile() -> Int32 {
        var template = Array("/tmp/berth-systemd-test-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        unlink(template)
        return fd
    }

    /// Both ends of a pipe; the caller places one and closes the other.
    static func pipeEnds() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        precondition(pipe(&fds) == 0)
        return (fds[0], fds[1])
    }

    static func devNull() -> Int32 {
        open("/dev/null", O_RDONLY)
    }

    /// `sockaddr_un` for a path, or for an abstract name written `@name`.
    static func unixAddress(_ path: String) -> sockaddr_un {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &a.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            if bytes.first == UInt8(ascii: "@") { raw[0] = 0 }
        }
        return a
    }

    private static func bindOrDie<A>(_ s: Int32, _ a: inout A) {
        let r = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<A>.size)) }
        }
        precondition(r == 0, "bind: \(String(cString: strerror(errno)))")
    }
}

/// The local port of a socket.
func localPort(_ fd: Int32) -> Int {
    FDInspector.localAddress(fd)?.port ?? -1
}

/// A unique name for this test run's unix sockets.
func uniqueName(_ tag: String) -> String {
    "berth-test-\(getpid())-\(tag)-\(UInt32.random(in: 0...UInt32.max))"
}

/// The `BindError` thrown by `body`, or nil.
func bindError(_ body: () throws -> Void) -> BindError? {
    do {
        try body()
        return nil
    } catch {
        return error as? BindError
    }
}

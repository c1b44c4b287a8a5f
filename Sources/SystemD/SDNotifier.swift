#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// Why a notification was not delivered. Delivery failures are never fatal: log and go on.
package enum NotifyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `NOTIFY_SOCKET` is neither an absolute path nor `@abstract` (e.g. `vsock:`).
    case unsupportedAddress(String)
    /// `NOTIFY_SOCKET` does not fit in `sockaddr_un`.
    case addressTooLong(String)
    /// The service manager's queue is full (`EAGAIN`); Berth does not wait.
    case wouldBlock(socket: String)
    /// `socket` or `sendto` failed.
    case system(socket: String, IOError)

    package var description: String {
        switch self {
        case .unsupportedAddress(let a):
            return "sd_notify: NOTIFY_SOCKET=\"\(a)\" is not an absolute path or @abstract name"
        case .addressTooLong(let a):
            return "sd_notify: NOTIFY_SOCKET=\"\(a)\" is too long for a unix socket address"
        case .wouldBlock(let a):
            return "sd_notify to \(a): the service manager's queue is full; notification dropped"
        case .system(let a, let e):
            return "sd_notify to \(a): \(e)"
        }
    }
}

/// Sends `sd_notify(3)` datagrams to `$NOTIFY_SOCKET`.
///
/// Each call opens a `SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK` unix socket, sends one
/// datagram with `MSG_DONTWAIT`, and closes it (as libsystemd does), so it never blocks the
/// caller, holds no descriptor between calls, and is safe from any thread.
///
/// Berth follows systemd's notify-reload protocol (`Type=notify-reload`): `READY=1` once every
/// listener serves, `RELOADING=1` + `MONOTONIC_USEC=` then `READY=1` around a reload,
/// `STOPPING=1` on shutdown, `STATUS=` with a one-line summary.
package struct SDNotifier: Sendable {
    /// `NOTIFY_SOCKET` as given: `/run/systemd/notify` or `@name` (abstract).
    package let socketPath: String

    /// A notifier for `environment["NOTIFY_SOCKET"]`; nil when it is unset or empty (then
    /// there is no service manager to tell, and `notifier?.ready()` does nothing).
    package init?(environment: [String: String]) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return nil }
        self.socketPath = path
    }

    /// A notifier for the process's `NOTIFY_SOCKET` (left in the environment).
    package init?() {
        self.init(environment: ProcessEnvironment.read(["NOTIFY_SOCKET"]))
    }

    /// `READY=1`, with `STATUS=` when `status` is given.
    package func ready(status: String? = nil) throws(NotifyError) {
        try send("READY=1" + (status.map { "\nSTATUS=" + Self.oneLine($0) } ?? ""))
    }

    /// `RELOADING=1` and `MONOTONIC_USEC=` (CLOCK_MONOTONIC in µs), as `Type=notify-reload`
    /// requires; send `ready(status:)` when the reload has finished, failed or not.
    package func reloading() throws(NotifyError) {
        try send("RELOADING=1\nMONOTONIC_USEC=\(Clock.monotonicNanos() / 1000)")
    }

    /// `STOPPING=1`.
    package func stopping() throws(NotifyError) {
        try send("STOPPING=1")
    }

    /// `STATUS=<text>`; newlines become spaces (one line, as Caddy does).
    package func status(_ text: String) throws(NotifyError) {
        try send("STATUS=" + Self.oneLine(text))
    }

    /// `WATCHDOG=1` (see `Watchdog.interval` for how often).
    package func watchdog() throws(NotifyError) {
        try send("WATCHDOG=1")
    }

    /// Sends `message` as one datagram, unchanged (newline-separated `KEY=VALUE` lines).
    package func send(_ message: String) throws(NotifyError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let abstract = bytes.first == UInt8(ascii: "@")
        guard abstract || bytes.first == UInt8(ascii: "/") else { throw .unsupportedAddress(socketPath) }
        // A path needs room for its NUL; an abstract name does not have one.
        guard bytes.count <= (abstract ? capacity : capacity - 1) else { throw .addressTooLong(socketPath) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            if abstract { raw[0] = 0 }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \.sun_path) ?? MemoryLayout<sa_family_t>.size
        let length = socklen_t(pathOffset + bytes.count + (abstract ? 0 : 1))

        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let s = socket(AF_UNIX, type, 0)
        guard s >= 0 else { throw .system(socket: socketPath, IOError("socket", errno: errno)) }
        let fd = FileDescriptor(owning: s)

        let payload = Array(message.utf8)
        let count = payload.count
        while true {
            let sent = payload.withUnsafeBytes { buf in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd.raw, buf.baseAddress, count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), $0, length)
                    }
                }
            }
            if sent >= 0 {
                if sent == count { return }
                throw .system(socket: socketPath, IOError("sendto (short: \(sent) of \(count) bytes)", errno: EMSGSIZE))
            }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { throw .wouldBlock(socket: socketPath) }
            throw .system(socket: socketPath, IOError("sendto", errno: e))
        }
    }

    private static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" || $0 == "\r\n" || $0 == "\r" ? " " : $0 })
    }
}

/// Why a watchdog variable was rejected.
package enum WatchdogError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(variable: String, value: String)

    package var description: String {
        switch self {
        case .malformed(let variable, let value):
            return "\(variable)=\"\(value)\" is not valid"
        }
    }
}

/// `sd_watchdog_enabled(3)`: whether the service manager expects `WATCHDOG=1` pings.
package enum Watchdog {
    /// The watchdog interval in microseconds from `WATCHDOG_USEC`; nil when it is unset or
    /// `WATCHDOG_PID` names another process. Ping (`SDNotifier.watchdog()`) at about half
    /// the interval.
    package static func interval(environment: [String: String], pid: Int32) throws(WatchdogError) -> UInt64? {
        guard let usecText = environment["WATCHDOG_USEC"] else { return nil }
        guard let usec = UInt64(usecText), usec > 0, usec < UInt64.max,
            usecText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else {
            throw .malformed(variable: "WATCHDOG_USEC", value: usecText)
        }
        if let pidText = environment["WATCHDOG_PID"] {
            guard let p = SocketActivation.parseDecimal(pidText), p > 0, p <= Int(Int32.max) else {
                throw .malformed(variable: "WATCHDOG_PID", value: pidText)
            }
            if Int32(p) != pid { return nil }
        }
        return usec
    }

    /// `interval(environment:pid:)` for the real environment and pid.
    package static func interval() throws(WatchdogError) -> UInt64? {
        try interval(environment: ProcessEnvironment.read(["WATCHDOG_USEC", "WATCHDOG_PID"]), pid: getpid())
    }
}

import Glibc
import IOCore
import Testing

@testable import SystemD

/// A unix datagram socket bound at a path or `@abstract` name, standing in for systemd.
private final class Receiver {
    let fd: Int32
    let address: String
    private let path: String?

    init(address: String) {
        self.address = address
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0)
        var a = Make.unixAddress(address)
        let abstract = address.hasPrefix("@")
        path = abstract ? nil : address
        let len = socklen_t(MemoryLayout<sa_family_t>.size + address.utf8.count + (abstract ? 0 : 1))
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        precondition(r == 0, "bind \(address): \(String(cString: strerror(errno)))")
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func path() -> Receiver { Receiver(address: "/tmp/\(uniqueName("notify")).sock") }
    static func abstract() -> Receiver { Receiver(address: "@" + uniqueName("notify")) }

    /// The next datagram (waits up to 5 s), or nil.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }
}

@Suite("sd_notify")
struct NotifyTests {
    @Test(arguments: ["path", "abstract"])
    func sendsTheProtocolMessages(kind: String) throws {
        let r = kind == "path" ? Receiver.path() : Receiver.abstract()
        let n = try #require(SDNotifier(environment: ["NOTIFY_SOCKET": r.address]))
        #expect(n.socketPath == r.address)

        try n.ready(status: "serving 3 listeners")
        #expect(r.receive() == "READY=1\nSTATUS=serving 3 listeners")

        try n.ready()
        #expect(r.receive() == "READY=1")

        let before = Clock.monotonicNanos() / 1000
        try n.reloading()
        let after = Clock.monotonicNanos() / 1000
        let reloading = try #require(r.receive())
        let lines = reloading.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first == "RELOADING=1")
        let usec = try #require(lines.last.flatMap { $0.hasPrefix("MONOTONIC_USEC=") ? UInt64($0.dropFirst(15)) : nil })
        #expect(usec >= before && usec <= after)

        try n.stopping()
        #expect(r.receive() == "STOPPING=1")

        try n.status("loading new config:\nline two")
        #expect(r.receive() == "STATUS=loading new config: line two")

        try n.watchdog()
        #expect(r.receive() == "WATCHDOG=1")

        try n.send("EXTEND_TIMEOUT_USEC=5000000\nSTATUS=x")
        #expect(r.receive() == "EXTEND_TIMEOUT_USEC=5000000\nSTATUS=x")
    }

    @Test func absentOrEmptyNotifySocketMeansNoNotifier() {
        #expect(SDNotifier(environment: [:]) == nil)
        #expect(SDNotifier(environment: ["NOTIFY_SOCKET": ""]) == nil)
    }

    @Test func unsupportedAddress() {
        for address in ["vsock:2:1234", "run/notify"] {
            let n = SDNotifier(environment: ["NOTIFY_SOCKET": address])
            #expect(throws: NotifyError.unsupportedAddress(address)) { try n?.ready() }
        }
        #expect(
            NotifyError.unsupportedAddress("vsock:2:1234").description
                == "sd_notify: NOTIFY_SOCKET=\"vsock:2:1234\" is not an absolute path or @abstract name")
    }

    @Test func addressTooLong() {
        let long = "/" + String(repeating: "x", count: 107)
        let n = SDNotifier(environment: ["NOTIFY_SOCKET": long])
        #expect(throws: NotifyError.addressTooLong(long)) { try n?.stopping() }
        // An abstract name has no terminating NUL, so 108 bytes fit.
        let r = Receiver(address: "@" + String(repeating: "y", count: 107 - 20) + uniqueName("").suffix(20))
        let a = SDNotifier(environment: ["NOTIFY_SOCKET": r.address])
        #expect(throws: Never.self) { try a?.stopping() }
        #expect(r.receive() == "STOPPING=1")
    }

    @Test func nobodyListening() {
        let address = "/tmp/\(uniqueName("absent")).sock"
        let n = SDNotifier(environment: ["NOTIFY_SOCKET": address])
        do {
            try n?.ready()
            Issue.record("sent to a socket that does not exist")
        } catch {
            guard case .system(let socket, let e) = error else {
                Issue.record("got \(error)")
                return
            }
            #expect(socket == address)
            #expect(e.errno == ENOENT)
            #expect(error.description == "sd_notify to \(address): sendto: No such file or directory")
        }
    }

    @Test func fullQueueDoesNotBlock() {
        let r = Receiver.path()
        let n = SDNotifier(environment: ["NOTIFY_SOCKET": r.address])
        var sent = 0
        var result: NotifyError? = nil
        while sent < 100_000 {
            do {
                try n?.status(String(repeating: "z", count: 1000))
                sent += 1
            } catch {
                result = error
                break
            }
        }
        #expect(result == .wouldBlock(socket: r.address))
        #expect(sent > 0)
        #expect(r.receive()?.hasPrefix("STATUS=zzz") == true)
    }
}

@Suite("Watchdog")
struct WatchdogTests {
    @Test func intervalFromTheEnvironment() throws {
        #expect(try Watchdog.interval(environment: [:], pid: 10) == nil)
        #expect(try Watchdog.interval(environment: ["WATCHDOG_USEC": "30000000"], pid: 10) == 30_000_000)
        #expect(try Watchdog.interval(environment: ["WATCHDOG_USEC": "500", "WATCHDOG_PID": "10"], pid: 10) == 500)
        #expect(try Watchdog.interval(environment: ["WATCHDOG_USEC": "500", "WATCHDOG_PID": "11"], pid: 10) == nil)
    }

    @Test(arguments: [
        (["WATCHDOG_USEC": "0"], "WATCHDOG_USEC", "0"),
        (["WATCHDOG_USEC": "abc"], "WATCHDOG_USEC", "abc"),
        (["WATCHDOG_USEC": "+5"], "WATCHDOG_USEC", "+5"),
        (["WATCHDOG_USEC": "18446744073709551615"], "WATCHDOG_USEC", "18446744073709551615"),
        (["WATCHDOG_USEC": "5", "WATCHDOG_PID": "x"], "WATCHDOG_PID", "x"),
    ])
    func malformed(env: [String: String], variable: String, value: String) {
        #expect(throws: WatchdogError.malformed(variable: variable, value: value)) {
            try Watchdog.interval(environment: env, pid: 10)
        }
    }
}

import Foundation
import Glibc
import IOCore

@testable import EventLoop

/// A value shared between the test thread and loop threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
    var current: Value { withLock { $0 } }
}

/// Polls `condition` every millisecond until it holds or `seconds` pass.
@discardableResult
func waitUntil(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}

/// Runs an event loop on its own thread.
final class LoopThread: @unchecked Sendable {
    let loop: EventLoop
    private let done = DispatchSemaphore(value: 0)

    init(_ loop: EventLoop? = nil) throws {
        self.loop = try loop ?? EventLoop()
        let l = self.loop
        let d = done
        let t = Thread { l.run(); d.signal() }
        t.start()
    }

    /// Runs `body` on the loop thread and waits for it.
    @discardableResult
    func sync<R: Sendable>(_ body: @escaping @Sendable () throws -> R) throws -> R {
        let result = Locked<Result<R, any Error>?>(nil)
        loop.execute { result.withLock { $0 = Result { try body() } } }
        guard waitUntil({ result.current != nil }) else { throw TestTimeout() }
        return try result.current!.get()
    }

    /// Stops the loop and waits for `run` to return; false on timeout.
    @discardableResult
    func stop(timeout: Double = 5) -> Bool {
        loop.stop()
        return done.wait(timeout: .now() + timeout) == .success
    }
}

struct TestTimeout: Error {}

/// A non-blocking, close-on-exec unix stream socket pair.
func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
    return (fds[0], fds[1])
}

/// A pipe (blocking).
func makePipe() -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    precondition(pipe(&fds) == 0)
    return (fds[0], fds[1])
}

/// Writes one byte, ignoring the result.
func poke(_ fd: Int32, _ byte: UInt8 = 0x78) {
    var b = byte
    _ = write(fd, &b, 1)
}

/// Records every event mask it gets, optionally running a hook on the loop thread.
final class RecordingHandler: EventHandler, @unchecked Sendable {
    let events = Locked<[UInt32]>([])
    var onEvent: ((UInt32) -> Void)?
    func handleEvents(_ ev: UInt32) {
        events.withLock { $0.append(ev) }
        onEvent?(ev)
    }
}

/// A fresh, unique path under /tmp.
func tempPath(_ tag: String) -> String {
    "/tmp/berth-el-\(tag)-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
}

/// The bound port of a socket.
func boundPort(_ fd: Int32) -> Int { Socket.localAddress(fd)?.port ?? -1 }

/// A blocking TCP client connected to 127.0.0.1:`port`; returns the fd.
func blockingConnect(port: Int, host: String = "127.0.0.1") -> Int32 {
    let addr = SocketAddress(ip: host, port: port)!
    let fd = socket(addr.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    precondition(fd >= 0)
    let rc = addr.withSockAddr { sa, len in connect(fd, sa, len) }
    precondition(rc == 0, "connect: \(IOError.describe(errno))")
    return fd
}

/// Carries a non-Sendable reference into a loop task (the test guarantees loop-thread use).
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

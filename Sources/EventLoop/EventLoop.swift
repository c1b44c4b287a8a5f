#if canImport(Glibc)
import Glibc
#endif
import CLinux
import IOCore

/// Something registered with an event loop that reacts to epoll readiness.
package protocol EventHandler: AnyObject {
    /// Called on the loop thread with the epoll event mask.
    func handleEvents(_ events: UInt32)
}

/// Readiness interests for `EventLoop.register`.
/// (`public` with `@inlinable` members: only public bodies are inlined into other modules.)
public struct Interest: OptionSet, Sendable {
    public let rawValue: UInt32
    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Compares the bits directly (the generic `RawRepresentable` `==` goes through witnesses).
    @inlinable @inline(__always)
    public static func == (a: Interest, b: Interest) -> Bool { a.rawValue == b.rawValue }
    @inlinable public static var read: Interest { Interest(rawValue: EPOLLIN.rawValue | EPOLLRDHUP.rawValue) }
    @inlinable public static var write: Interest { Interest(rawValue: EPOLLOUT.rawValue) }
    /// Readable only (listening sockets: EPOLLEXCLUSIVE allows no EPOLLRDHUP).
    package static let acceptable = Interest(rawValue: EPOLLIN.rawValue)
    /// Wake only one of the loops waiting on a shared listening socket (Linux ≥ 4.5).
    package static let exclusive = Interest(rawValue: berth_epollexclusive())
}

/// Epoll event bits, for handlers.
package enum EventBits {
    package static let readable: UInt32 = EPOLLIN.rawValue
    package static let writable: UInt32 = EPOLLOUT.rawValue
    package static let hangup: UInt32 = EPOLLHUP.rawValue | EPOLLRDHUP.rawValue
    package static let error: UInt32 = EPOLLERR.rawValue
}

/// One epoll event loop, driven by one thread. Everything registered on it is touched only on
/// that thread; other threads talk to it through `execute`, which wakes it with an eventfd.
package final class EventLoop: @unchecked Sendable {
    /// Index of this loop in its group.
    package let index: Int
    private let epfd: Int32
    private let wakeFD: Int32
    /// Handlers by fd number (fds are small, dense integers).
    private var handlers: [EventHandler?] = []
    private var events: UnsafeMutablePointer<epoll_event>
    private let maxEvents = 256
    private var running = false
    private var stopRequested = false

    // Cross-thread task queue.
    private var mutex = pthread_mutex_t()
    private var pending: [@Sendable () -> Void] = []
    private var wakePending = false

    // Timers.
    private var timers = TimerHeap()
    private var timeoutLists: [TimeoutList] = []

    /// Called once per loop iteration after events were handled (e.g. to flush batched writes).
    package var afterEvents: (() -> Void)?
    /// The thread running this loop, once started.
    package private(set) var threadID: pthread_t? = nil

    /// Creates a loop with its own epoll instance and wake-up eventfd.
    package init(index: Int = 0) throws(IOError) {
        self.index = index
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        if epfd < 0 { throw IOError("epoll_create1", errno: errno) }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        if wakeFD < 0 {
            let e = errno
            close(epfd)
            throw IOError("eventfd", errno: e)
        }
        events = .allocate(capacity: maxEvents)
        pthread_mutex_init(&mutex, nil)
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.fd = wakeFD
        if epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, &ev) != 0 {
            throw IOError("epoll_ctl(wake)", errno: errno)
        }
    }

    deinit {
        close(wakeFD)
        close(epfd)
        events.deallocate()
        pthread_mutex_destroy(&mutex)
    }

    /// True when called on this loop's thread.
    package var inLoopThread: Bool {
        guard let t = threadID else { return false }
        return pthread_equal(t, pthread_self()) != 0
    }

    // MARK: Registration

    /// Starts watching `fd` for `interest`, delivering events to `handler`.
    package func register(fd: Int32, interest: Interest, handler: EventHandler) throws(IOError) {
        var ev = epoll_event()
        ev.events = interest.rawValue
        ev.data.fd = fd
        if epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0 { throw IOError("epoll_ctl(ADD)", errno: errno) }
        let i = Int(fd)
        if i >= handlers.count {
            handlers.append(contentsOf: repeatElement(nil, count: max(i + 1 - handlers.count, 64)))
        }
        handlers[i] = handler
    }

    /// Changes the interest set of a registered fd.
    @inline(__always)
    package func modify(fd: Int32, interest: Interest) {
        var ev = epoll_event()
        ev.events = interest.rawValue
        ev.data.fd = fd
        _ = epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev)
    }

    /// Stops watching `fd` (call before closing it).
    package func deregister(fd: Int32) {
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
        let i = Int(fd)
        if i < handlers.count { handlers[i] = nil }
    }

    /// Forgets `fd`'s handler without EPOLL_CTL_DEL, for an fd that is about to be closed and
    /// that no other descriptor refers to (accepted sockets): close(2) removes it from the
    /// epoll set. Never for inherited or dup'd descriptors.
    package func forget(fd: Int32) {
        let i = Int(fd)
        if i < handlers.count { handlers[i] = nil }
    }

    // MARK: Cross-thread

    /// Runs `task` on the loop thread soon. Safe from any thread.
    package func execute(_ task: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(&mutex)
        pending.append(task)
        let needWake = !wakePending
        wakePending = true
        pthread_mutex_unlock(&mutex)
        if needWake {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    private func runPending() {
        var drain: UInt64 = 0
        _ = Glibc.read(wakeFD, &drain, 8)
        pthread_mutex_lock(&mutex)
        let tasks = pending
        pending.removeAll(keepingCapacity: true)
        wakePending = false
        pthread_mutex_unlock(&mutex)
        for t in tasks { t() }
    }

    // MARK: Timers

    /// Runs `body` on the loop after `milliseconds` (cold path: allocates a closure).
    @discardableResult
    package func schedule(afterMilliseconds ms: Int, _ body: @escaping () -> Void) -> TimerID {
        timers.insert(deadline: Deadline.after(milliseconds: ms).nanos, body)
    }

    /// Cancels a scheduled timer.
    package func cancel(_ id: TimerID) { timers.cancel(id) }

    /// A FIFO timeout list for a fixed duration: members are ordered by deadline for free.
    package func makeTimeoutList(milliseconds: Int) -> TimeoutList {
        let l = TimeoutList(durationNanos: UInt64(max(1, milliseconds)) * 1_000_000)
        timeoutLists.append(l)
        return l
    }

    private func nextTimeoutMilliseconds(now: UInt64) -> Int32 {
        var next = timers.nextDeadline ?? UInt64.max
        for l in timeoutLists { if let d = l.nextDeadline, d < next { next = d } }
        if next == UInt64.max { return -1 }
        if next <= now { return 0 }
        let ms = (next - now + 999_999) / 1_000_000
        return Int32(min(ms, 3_600_000))
    }

    private func fireTimers(now: UInt64) {
        while let body = timers.popDue(now: now) { body() }
        for l in timeoutLists { l.expire(now: now) }
    }

    // MARK: Running

    /// The loop running on the calling thread, if any (handlers use it to open upstream
    /// connections on their own loop).
    package static var current: EventLoop? {
        guard let p = pthread_getspecific(EventLoop.currentKey) else { return nil }
        return Unmanaged<EventLoop>.fromOpaque(p).takeUnretainedValue()
    }

    private static let currentKey: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// Runs the loop on the calling thread until `stop()`.
    package func run() {
        threadID = pthread_self()
        pthread_setspecific(EventLoop.currentKey, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(EventLoop.currentKey, nil) }
        running = true
        while !stopRequested {
            let now = Clock.monotonicNanos()
            let timeout = nextTimeoutMilliseconds(now: now)
            let n = epoll_wait(epfd, events, Int32(maxEvents), timeout)
            if n < 0 {
                if errno == EINTR { continue }
                preconditionFailure("epoll_wait: \(IOError.describe(errno))")
            }
            var i = 0
            while i < Int(n) {
                let ev = events[i]
                let fd = ev.data.fd
                if fd == wakeFD {
                    runPending()
                } else if Int(fd) < handlers.count, let h = handlers[Int(fd)] {
                    h.handleEvents(ev.events)
                }
                i += 1
            }
            if timers.nextDeadline != nil || !timeoutLists.isEmpty {
                fireTimers(now: Clock.monotonicNanos())
            }
            // After timers too: a timer may complete a response (reverse_proxy timeouts,
            // retries) whose flush is requested for "after this iteration's events".
            afterEvents?()
        }
        running = false
        // Run whatever was queued while stopping so no task is lost silently.
        runPending()
    }

    /// Asks the loop to return from `run()` after the current iteration. Safe from any thread.
    package func stop() {
        execute { [unowned self] in self.stopRequested = true }
    }
}

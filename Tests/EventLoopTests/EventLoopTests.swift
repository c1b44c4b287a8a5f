import Foundation
import Glibc
import IOCore
import Testing

@testable import EventLoop

@Suite("EventLoop")
struct EventLoopTests {
    @Test func registeredPipeDeliversReadable() throws {
        let t = try LoopThread()
        defer { t.stop() }
        let (r, w) = makePipe()
        defer { close(r); close(w) }
        let h = RecordingHandler()
        let got = Locked<[UInt8]>([])
        h.onEvent = { _ in
            var b: UInt8 = 0
            if read(r, &b, 1) == 1 { got.withLock { $0.append(b) } }
        }
        try t.sync { try t.loop.register(fd: r, interest: .read, handler: h) }
        poke(w, 0x41)
        #expect(waitUntil { got.current == [0x41] })
        poke(w, 0x42)
        #expect(waitUntil { got.current == [0x41, 0x42] })
        #expect(h.events.current.allSatisfy { $0 & EventBits.readable != 0 })
        try t.sync { t.loop.deregister(fd: r) }
    }

    @Test func hangupIsReported() throws {
        let t = try LoopThread()
        defer { t.stop() }
        let (a, b) = socketPair()
        defer { close(a) }
        let h = RecordingHandler()
        h.onEvent = { _ in t.loop.deregister(fd: a) }
        try t.sync { try t.loop.register(fd: a, interest: .read, handler: h) }
        close(b)
        #expect(waitUntil { !h.events.current.isEmpty })
        let ev = try #require(h.events.current.first)
        #expect(ev & EventBits.hangup != 0)
    }

    @Test func modifyChangesInterest() throws {
        let t = try LoopThread()
        defer { t.stop() }
        let (a, b) = socketPair()
        defer { close(a); close(b) }
        let h = RecordingHandler()
        // On the first writable event, drop write interest again.
        h.onEvent = { ev in if ev & EventBits.writable != 0 { t.loop.modify(fd: a, interest: .read) } }
        try t.sync { try t.loop.register(fd: a, interest: .read, handler: h) }
        usleep(20_000)
        #expect(h.events.current.isEmpty)  // nothing to read, write not asked for
        try t.sync { t.loop.modify(fd: a, interest: [.read, .write]) }
        #expect(waitUntil { h.events.current.count == 1 })
        usleep(50_000)
        // Level-triggered EPOLLOUT would fire every iteration had the interest not been dropped.
        #expect(h.events.current.count == 1)
        #expect(h.events.current[0] & EventBits.writable != 0)
        try t.sync { t.loop.deregister(fd: a) }
    }

    @Test func deregisterStopsDelivery() throws {
        let t = try LoopThread()
        defer { t.stop() }
        let (r, w) = makePipe()
        defer { close(r); close(w) }
        let h = RecordingHandler()
        try t.sync { try t.loop.register(fd: r, interest: .read, handler: h) }
        try t.sync { t.loop.deregister(fd: r) }
        poke(w)
        usleep(50_000)
        _ = try t.sync { 0 }  // at least one more loop iteration
        #expect(h.events.current.isEmpty)
    }

    @Test func registerTwiceFails() throws {
        let loop = try EventLoop()
        let (r, w) = makePipe()
        defer { close(r); close(w) }
        let h = RecordingHandler()
        try loop.register(fd: r, interest: .read, handler: h)
        #expect(throws: IOError("epoll_ctl(ADD)", errno: EEXIST)) { try loop.register(fd: r, interest: .read, handler: h) }
        #expect(throws: IOError("epoll_ctl(ADD)", errno: EBADF)) { try loop.register(fd: -1, interest: .read, handler: h) }
        loop.deregister(fd: r)
    }

    @Test func executeFromOtherThreadsWakesTheLoopAndKeepsOrder() throws {
        let t = try LoopThread()
        defer { t.stop() }
        // Let the loop block in epoll_wait with no timeout first.
        usleep(20_000)
        let onLoop = Locked<Bool>(false)
        t.loop.execute { onLoop.withLock { $0 = t.loop.inLoopThread } }
        #expect(waitUntil(seconds: 2) { onLoop.current })
        #expect(!t.loop.inLoopThread)

        let seen = Locked<[[Int]]>(Array(repeating: [], count: 4))
        DispatchQueue.concurrentPerform(iterations: 4) { p in
            for i in 0..<500 {
                t.loop.execute { seen.withLock { $0[p].append(i) } }
            }
        }
        #expect(waitUntil { seen.current.allSatisfy { $0.count == 500 } })
        for p in 0..<4 { #expect(seen.current[p] == Array(0..<500)) }
    }

    @Test func taskQueuedFromTaskRunsOnALaterIteration() throws {
        let t = try LoopThread()
        defer { t.stop() }
        let order = Locked<[String]>([])
        t.loop.execute {
            order.withLock { $0.append("a") }
            t.loop.execute { order.withLock { $0.append("c") } }
            order.withLock { $0.append("b") }
        }
        #expect(waitUntil { order.current.count == 3 })
        #expect(order.current == ["a", "b", "c"])
    }

    @Test func timersFireInDeadlineOrder() throws {
        let t = try LoopThread()
        defer { t.stop() }
        let fired = Locked<[Int]>([])
        let start = Clock.monotonicNanos()
        let elapsed = Locked<UInt64>(0)
        try t.sync {
            for ms in [60, 20, 40, 0] {
                t.loop.schedule(afterMilliseconds: ms) {
                    fired.withLock { $0.append(ms) }
                    if ms == 60 { elapsed.withLock { $0 = Clock.monotonicNanos() - start } }
                }
            }
        }
        #expect(waitUntil { fired.current.count == 4 })
        #expect(fired.current == [0, 20, 40, 60])
        #expect(elapsed.current >= 60_000_000)
    }

    @Test func cancelledTimerDoesNotFire() throws {
        let t = try LoopThread()
        defer { t.stop() }
        let fired = Locked<[String]>([])
        try t.sync {
            let id = t.loop.schedule(afterMilliseconds: 10) { fired.withLock { $0.append("cancelled") } }
            t.loop.schedule(afterMilliseconds: 30) { fired.withLock { $0.append("kept") } }
            t.loop.cancel(id)
            // Cancelling twice, or an id that never existed, is harmless.
            t.loop.cancel(id)
            t.loop.cancel(TimerID(raw: 999_999))
        }
        #expect(waitUntil { fired.current.count == 1 })
        usleep(30_000)
        #expect(fired.current == ["kept"])
    }

    @Test func timerCanRescheduleItself() throws {
        let t = try LoopThread()
        defer { t.stop() }
        let count = Locked(0)
        final class Ticker: @unchecked Sendable {
            let loop: EventLoop
            let count: Locked<Int>
            init(_ loop: EventLoop, _ count: Locked<Int>) { self.loop = loop; self.count = count }
            func tick() {
                let n = count.withLock { $0 += 1; return $0 }
                if n < 5 { loop.schedule(afterMilliseconds: 0) { self.tick() } }
            }
        }
        let ticker = Ticker(t.loop, count)
        try t.sync { t.loop.schedule(afterMilliseconds: 1) { ticker.tick() } }
        #expect(waitUntil { count.current == 5 })
        usleep(10_000)
        #expect(count.current == 5)
    }

    @Test func stopReturnsFromRunAndRunsQueuedTasks() throws {
        let loop = try EventLoop()
        let t = try LoopThread(loop)
        let ran = Locked(false)
        loop.stop()
        loop.execute { ran.withLock { $0 = true } }
        #expect(t.stop())
        #expect(ran.current)
    }

    @Test func afterEventsRunsEachIteration() throws {
        let loop = try EventLoop()
        let calls = Locked(0)
        loop.afterEvents = { calls.withLock { $0 += 1 } }
        let t = try LoopThread(loop)
        defer { t.stop() }
        for _ in 0..<3 { _ = try t.sync { 0 } }
        #expect(calls.current >= 3)
    }

    @Test func timeoutListOnARunningLoop() throws {
        let t = try LoopThread()
        defer { t.stop() }
        final class Node: TimeoutNode, @unchecked Sendable {
            let hit: Locked<[Bool]>
            init(_ hit: Locked<[Bool]>) { self.hit = hit }
            override func timeoutExpired() { hit.withLock { $0.append(currentTimeoutList == nil) } }
        }
        let hit = Locked<[Bool]>([])
        let node = Node(hit)
        let start = Clock.monotonicNanos()
        try t.sync {
            let list = t.loop.makeTimeoutList(milliseconds: 30)
            list.arm(node, now: Clock.monotonicNanos())
        }
        #expect(waitUntil { hit.current.count == 1 })
        #expect(Clock.monotonicNanos() - start >= 30_000_000)
        #expect(hit.current == [true])  // unlinked before the callback
    }
}

@Suite("EventLoopGroup")
struct EventLoopGroupTests {
    @Test func startRunsEachLoopOnItsOwnThreadAndStopJoins() throws {
        let g = try EventLoopGroup(count: 3)
        #expect(g.loops.map(\.index) == [0, 1, 2])
        g.start()
        let threads = Locked<[Int: pthread_t]>([:])
        for l in g.loops {
            l.execute { threads.withLock { $0[l.index] = pthread_self() } }
        }
        #expect(waitUntil { threads.current.count == 3 })
        let ts = threads.current
        #expect(pthread_equal(ts[0]!, ts[1]!) == 0)
        #expect(pthread_equal(ts[1]!, ts[2]!) == 0)
        #expect(pthread_equal(ts[0]!, pthread_self()) == 0)
        for l in g.loops { #expect(l.threadID.map { pthread_equal($0, ts[l.index]!) != 0 } == true) }
        let joined = Locked(false)
        Thread {
            g.stop()
            g.join()
            joined.withLock { $0 = true }
        }.start()
        #expect(waitUntil { joined.current })
    }

    @Test func atLeastOneLoop() throws {
        #expect(try EventLoopGroup(count: 0).loops.count == 1)
        #expect(try EventLoopGroup(count: -3).loops.count == 1)
        #expect(EventLoopGroup.defaultLoopCount >= 1)
    }
}

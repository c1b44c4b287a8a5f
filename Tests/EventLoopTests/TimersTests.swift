import Testing

@testable import EventLoop

/// A node that appends its name to a shared log when it expires.
final class NamedNode: TimeoutNode {
    let name: String
    let log: Log
    final class Log { var names: [String] = [] }
    init(_ name: String, _ log: Log) {
        self.name = name
        self.log = log
    }
    override func timeoutExpired() { log.names.append(name) }
}

@Suite("TimeoutList")
struct TimeoutListTests {
    @Test func armKeepsArrivalOrderAndExpiresByDeadline() {
        let log = NamedNode.Log()
        let list = TimeoutList(durationNanos: 100)
        let a = NamedNode("a", log), b = NamedNode("b", log), c = NamedNode("c", log)
        list.arm(a, now: 0)
        list.arm(b, now: 10)
        list.arm(c, now: 20)
        #expect(list.count == 3)
        #expect(list.nextDeadline == 100)
        list.expire(now: 99)
        #expect(log.names.isEmpty)
        list.expire(now: 110)
        #expect(log.names == ["a", "b"])
        #expect(list.count == 1)
        #expect(list.nextDeadline == 120)
        #expect(a.currentTimeoutList == nil && b.currentTimeoutList == nil)
        #expect(c.currentTimeoutList === list)
        list.expire(now: 1000)
        #expect(log.names == ["a", "b", "c"])
        #expect(list.count == 0)
        #expect(list.nextDeadline == nil)
    }

    @Test func rearmMovesToTheTail() {
        let log = NamedNode.Log()
        let list = TimeoutList(durationNanos: 100)
        let a = NamedNode("a", log), b = NamedNode("b", log), c = NamedNode("c", log)
        list.arm(a, now: 0)
        list.arm(b, now: 1)
        list.arm(c, now: 2)
        list.arm(a, now: 50)  // re-arm: now the last
        #expect(list.count == 3)
        #expect(list.nextDeadline == 101)
        list.expire(now: 149)
        #expect(log.names == ["b", "c"])
        list.expire(now: 150)
        #expect(log.names == ["b", "c", "a"])
        // Re-arming the only member keeps the list consistent.
        list.arm(b, now: 200)
        list.arm(b, now: 300)
        #expect(list.count == 1)
        #expect(list.nextDeadline == 400)
    }

    @Test func removeFromHeadMiddleTailAndNonMember() {
        let log = NamedNode.Log()
        let list = TimeoutList(durationNanos: 10)
        let other = TimeoutList(durationNanos: 10)
        let nodes = (0..<5).map { NamedNode("n\($0)", log) }
        for (i, n) in nodes.enumerated() { list.arm(n, now: UInt64(i)) }
        list.remove(nodes[2])  // middle
        list.remove(nodes[0])  // head
        list.remove(nodes[4])  // tail
        #expect(list.count == 2)
        list.remove(nodes[4])  // already out: no-op
        other.remove(nodes[1])  // not a member of `other`: no-op
        #expect(list.count == 2)
        #expect(other.count == 0)
        #expect(nodes[1].currentTimeoutList === list)
        #expect(list.nextDeadline == 11)
        list.expire(now: 100)
        #expect(log.names == ["n1", "n3"])
        // The list is reusable after emptying; the tail was reset.
        list.arm(nodes[0], now: 200)
        list.arm(nodes[2], now: 201)
        list.expire(now: 300)
        #expect(log.names == ["n1", "n3", "n0", "n2"])
    }

    @Test func nodeMovesBetweenLists() {
        let log = NamedNode.Log()
        let short = TimeoutList(durationNanos: 10)
        let long = TimeoutList(durationNanos: 1000)
        let a = NamedNode("a", log), b = NamedNode("b", log)
        short.arm(a, now: 0)
        short.arm(b, now: 0)
        long.arm(a, now: 5)
        #expect(short.count == 1 && long.count == 1)
        #expect(a.currentTimeoutList === long)
        short.expire(now: 20)
        long.expire(now: 20)
        #expect(log.names == ["b"])
        a.disarmTimeout()
        #expect(long.count == 0)
        #expect(a.currentTimeoutList == nil)
        a.disarmTimeout()  // idempotent
        long.expire(now: .max)
        #expect(log.names == ["b"])
    }

    @Test func callbackMayRearmIntoTheSameList() {
        final class Again: TimeoutNode {
            var fired = 0
            unowned let list: TimeoutList
            init(_ list: TimeoutList) { self.list = list }
            override func timeoutExpired() {
                fired += 1
                if fired == 1 { list.arm(self, now: 1000) }
            }
        }
        let list = TimeoutList(durationNanos: 10)
        let n = Again(list)
        list.arm(n, now: 0)
        list.expire(now: 500)
        #expect(n.fired == 1)
        #expect(list.count == 1)
        #expect(list.nextDeadline == 1010)
        list.expire(now: 1010)
        #expect(n.fired == 2)
        #expect(list.count == 0)
    }
}

@Suite("TimerHeap")
struct TimerHeapTests {
    @Test func firesInDeadlineOrderForRandomInsertions() {
        final class Out { var v: [UInt64] = [] }
        let out = Out()
        var heap = TimerHeap()
        var deadlines: [UInt64] = []
        for _ in 0..<500 {
            let d = UInt64.random(in: 0..<10_000)
            deadlines.append(d)
            _ = heap.insert(deadline: d) { out.v.append(d) }
        }
        #expect(heap.nextDeadline == deadlines.min())
        while let b = heap.popDue(now: 4999) { b() }
        #expect(out.v == deadlines.filter { $0 <= 4999 }.sorted())
        while let b = heap.popDue(now: .max) { b() }
        #expect(out.v == deadlines.sorted())
        #expect(heap.nextDeadline == nil)
    }

    @Test func cancelSkipsOnlyThatTimer() {
        final class Out { var v: [Int] = [] }
        let out = Out()
        var heap = TimerHeap()
        let ids = (0..<10).map { i in heap.insert(deadline: UInt64(i)) { out.v.append(i) } }
        #expect(Set(ids).count == 10)
        heap.cancel(ids[3])
        heap.cancel(ids[0])
        while let b = heap.popDue(now: 100) { b() }
        #expect(out.v == [1, 2, 4, 5, 6, 7, 8, 9])
        // Cancelling a fired timer leaves nothing behind to skip a future one.
        heap.cancel(ids[5])
        _ = heap.insert(deadline: 200) { out.v.append(200) }
        while let b = heap.popDue(now: 200) { b() }
        #expect(out.v.last == 200)
    }
}

/// The list's links are unmanaged (it does not own its members): a member that goes away
/// while armed must leave the list intact.
@Suite("TimeoutList ownership")
struct TimeoutListOwnershipTests {
    @Test func memberFreedWhileArmedLeavesTheList() {
        let log = NamedNode.Log()
        let list = TimeoutList(durationNanos: 100)
        let a = NamedNode("a", log), c = NamedNode("c", log)
        list.arm(a, now: 0)
        do {
            let b = NamedNode("b", log)
            list.arm(b, now: 1)
            list.arm(c, now: 2)
            #expect(list.count == 3)
            #expect(b.isArmed(in: list))
        }  // b is released here, still armed
        #expect(list.count == 2)
        list.expire(now: 1000)
        #expect(log.names == ["a", "c"])
        #expect(list.count == 0 && list.nextDeadline == nil)
        #expect(!a.isArmed && !c.isArmed)
    }

    @Test func armingInAnotherListMovesTheNode() {
        let log = NamedNode.Log()
        let short = TimeoutList(durationNanos: 10), long = TimeoutList(durationNanos: 1000)
        let a = NamedNode("a", log), b = NamedNode("b", log)
        short.arm(a, now: 0)
        short.arm(b, now: 0)
        long.arm(a, now: 0)
        #expect(short.count == 1 && long.count == 1)
        #expect(a.isArmed(in: long) && !a.isArmed(in: short) && b.isArmed(in: short))
        short.remove(a)  // not a member: no effect
        #expect(long.count == 1)
        short.expire(now: 10)
        long.expire(now: 999)
        #expect(log.names == ["b"])
        a.disarmTimeout()
        #expect(long.count == 0 && long.nextDeadline == nil)
        long.expire(now: 5000)
        #expect(log.names == ["b"])
    }
}

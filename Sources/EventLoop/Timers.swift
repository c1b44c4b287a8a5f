import IOCore

/// Identifies a scheduled timer so it can be cancelled.
package struct TimerID: Hashable, Sendable {
    package let raw: UInt64
}

/// A binary min-heap of one-shot timers (cold paths: reloads, retries, health checks).
struct TimerHeap {
    private struct Entry {
        var deadline: UInt64
        var id: UInt64
        var body: () -> Void
    }
    private var heap: [Entry] = []
    private var cancelled: Set<UInt64> = []
    private var nextID: UInt64 = 1

    var nextDeadline: UInt64? { heap.first?.deadline }

    mutating func insert(deadline: UInt64, _ body: @escaping () -> Void) -> TimerID {
        let id = nextID
        nextID += 1
        heap.append(Entry(deadline: deadline, id: id, body: body))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if heap[p].deadline <= heap[i].deadline { break }
            heap.swapAt(p, i)
            i = p
        }
        return TimerID(raw: id)
    }

    mutating func cancel(_ id: TimerID) {
        if heap.contains(where: { $0.id == id.raw }) { cancelled.insert(id.raw) }
    }

    private mutating func popMin() -> Entry {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, heap[l].deadline < heap[m].deadline { m = l }
                if r < heap.count, heap[r].deadline < heap[m].deadline { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return top
    }

    /// Removes the earliest timer due at `now` (skipping cancelled ones) and returns its body.
    /// The caller runs the body after this returns, so a body may schedule or cancel timers
    /// without overlapping access to the heap.
    mutating func popDue(now: UInt64) -> (() -> Void)? {
        while let d = heap.first?.deadline, d <= now {
            let e = popMin()
            if cancelled.remove(e.id) != nil { continue }
            return e.body
        }
        return nil
    }
}

/// A member of a `TimeoutList`: connections subclass this to get O(1), allocation-free
/// timeouts (the list is intrusive).
///
/// The list does not own its members (every link is `unowned(unsafe)`, so arming and
/// disarming, several times per request, retain and release nothing): a node is kept alive
/// by its owner (the loop's handler table, a connection table, a pool) while it is armed,
/// and a node that goes away while armed leaves its list in `deinit`.
open class TimeoutNode {
    fileprivate var next: Unmanaged<TimeoutNode>?
    fileprivate var prev: Unmanaged<TimeoutNode>?
    fileprivate var list: Unmanaged<TimeoutList>?
    fileprivate var deadline: UInt64 = 0

    public init() {}

    deinit {
        if let l = list { l._withUnsafeGuaranteedRef { $0.unlink(self) } }
    }

    /// Called on the loop thread when the node's deadline passes; the node is already unlinked.
    open func timeoutExpired() {}

    /// The list the node is in, if any.
    package var currentTimeoutList: TimeoutList? { list?.takeUnretainedValue() }

    /// True when the node is armed in `l`.
    @inline(__always)
    package func isArmed(in l: TimeoutList) -> Bool {
        list?.toOpaque() == Unmanaged.passUnretained(l).toOpaque()
    }

    /// True when the node is armed in any list.
    @inline(__always)
    package var isArmed: Bool { list != nil }
}

/// Nodes waiting for the same fixed duration. Because every member waits equally long, appending
/// at the tail keeps the list sorted by deadline; the loop only looks at the head.
///
/// Links are `Unmanaged` and followed with `_withUnsafeGuaranteedRef`: an `unowned(unsafe)`
/// reference is still retained and released around every use, an unmanaged one is not.
package final class TimeoutList {
    /// The duration every member waits.
    package let durationNanos: UInt64
    private var head: Unmanaged<TimeoutNode>?
    private var tail: Unmanaged<TimeoutNode>?
    /// Number of members.
    package private(set) var count = 0

    init(durationNanos: UInt64) { self.durationNanos = durationNanos }

    /// Deadline of the first member.
    var nextDeadline: UInt64? { head?._withUnsafeGuaranteedRef { $0.deadline } }

    /// (Re)starts `node`'s timeout in this list, taking it out of any other list first.
    @inline(__always)
    package func arm(_ node: TimeoutNode, now: UInt64) {
        if let old = node.list { old._withUnsafeGuaranteedRef { $0.unlink(node) } }
        let me = Unmanaged.passUnretained(node)
        node.deadline = now &+ durationNanos
        node.list = Unmanaged.passUnretained(self)
        node.next = nil
        node.prev = tail
        if let t = tail { t._withUnsafeGuaranteedRef { $0.next = me } } else { head = me }
        tail = me
        count += 1
    }

    /// Removes `node` if it is in this list.
    @inline(__always)
    package func remove(_ node: TimeoutNode) {
        guard node.isArmed(in: self) else { return }
        unlink(node)
    }

    /// Takes `node`, a member of this list, out of it.
    @inline(__always)
    fileprivate func unlink(_ node: TimeoutNode) {
        let n = node.next
        let p = node.prev
        if let p { p._withUnsafeGuaranteedRef { $0.next = n } } else { head = n }
        if let n { n._withUnsafeGuaranteedRef { $0.prev = p } } else { tail = p }
        node.next = nil
        node.prev = nil
        node.list = nil
        count -= 1
    }

    /// Unlinks and notifies every member whose deadline has passed.
    func expire(now: UInt64) {
        while let h = head, h._withUnsafeGuaranteedRef({ $0.deadline }) <= now {
            let node = h.takeUnretainedValue()
            unlink(node)
            node.timeoutExpired()
        }
    }
}

extension TimeoutNode {
    /// Takes the node out of whatever timeout list it is in.
    @inline(__always)
    package func disarmTimeout() {
        if let l = list { l._withUnsafeGuaranteedRef { $0.unlink(self) } }
    }
}


import Foundation
import Glibc
import Testing

@testable import EventLoop

@Suite("BlockingPool")
struct BlockingPoolTests {
    @Test func oneWorkerRunsJobsInSubmissionOrder() {
        let pool = BlockingPool(name: "test-order", threads: 1)
        let got = Locked<[Int]>([])
        for i in 0..<50 { #expect(pool.submit { got.withLock { $0.append(i) } }) }
        #expect(waitUntil { got.current.count == 50 })
        #expect(got.current == Array(0..<50))
    }

    @Test func fullQueueRefusesAndRecovers() {
        let pool = BlockingPool(name: "test-full", threads: 1, maxQueued: 3)
        let gate = DispatchSemaphore(value: 0)
        let started = Locked(false)
        let ran = Locked(0)
        // The only worker blocks in the first job; three more wait; a fifth is refused.
        #expect(pool.submit {
            started.withLock { $0 = true }
            gate.wait()
        })
        #expect(waitUntil { started.current })
        for _ in 0..<3 { #expect(pool.submit { ran.withLock { $0 += 1 } }) }
        #expect(pool.queued == 3)
        #expect(!pool.submit { ran.withLock { $0 += 100 } })
        gate.signal()
        #expect(waitUntil { ran.current == 3 })
        #expect(pool.submit { ran.withLock { $0 += 1 } })
        #expect(waitUntil { ran.current == 4 })
    }

    @Test func workersRunInParallelUnderTheirName() {
        let pool = BlockingPool(name: "test-pool", threads: 2)
        let gate = DispatchSemaphore(value: 0)
        let names = Locked<[String]>([])
        // Two jobs that each wait for the other can only finish on two threads at once.
        let inside = Locked(0)
        for _ in 0..<2 {
            #expect(pool.submit {
                let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
                names.withLock { $0.append(comm.trimmingCharacters(in: .whitespacesAndNewlines)) }
                inside.withLock { $0 += 1 }
                _ = gate.wait(timeout: .now() + 10)
            })
        }
        #expect(waitUntil { inside.current == 2 })
        gate.signal()
        gate.signal()
        #expect(names.current == ["test-pool", "test-pool"])
    }
}

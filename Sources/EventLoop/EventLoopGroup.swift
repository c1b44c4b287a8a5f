#if canImport(Glibc)
import Glibc
#endif
import CLinux
import IOCore

/// A fixed set of event loops, one thread each.
package final class EventLoopGroup: @unchecked Sendable {
    /// The loops, index = loop number.
    package let loops: [EventLoop]
    private var threads: [pthread_t] = []

    /// Creates `count` loops (not yet running).
    package init(count: Int) throws(IOError) {
        var ls: [EventLoop] = []
        for i in 0..<max(1, count) { ls.append(try EventLoop(index: i)) }
        loops = ls
    }

    /// The number of online CPUs (the default loop count).
    package static var defaultLoopCount: Int {
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? n : 1
    }

    /// Starts one thread per loop. Signals stay blocked in these threads when the caller
    /// blocked them before calling.
    package func start() {
        for loop in loops {
            let box = Unmanaged.passRetained(loop).toOpaque()
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { arg in
                guard let arg else { return nil }
                let loop = Unmanaged<EventLoop>.fromOpaque(arg).takeRetainedValue()
                // Named so `top -H` and tests can tell the loops apart (15 bytes at most).
                _ = berth_set_thread_name("berth-loop-\(loop.index)")
                loop.run()
                return nil
            }, box)
            precondition(rc == 0, "pthread_create failed: \(rc)")
            threads.append(tid)
        }
    }

    /// Waits for every loop thread to return.
    package func join() {
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }

    /// Asks every loop to stop.
    package func stop() {
        for l in loops { l.stop() }
    }
}

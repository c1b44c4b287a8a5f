#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// A few named worker threads for work that blocks (getaddrinfo, bcrypt): event loops submit a
/// job and get its answer back through `EventLoop.execute`. Jobs run in submission order; the
/// threads start on the first submission and live as long as the process. Each user keeps its
/// own pool, so a slow kind of job (a 1 s bcrypt check) never delays another (a name lookup).
package final class BlockingPool: @unchecked Sendable {
    private let name: String
    private let threadCount: Int
    private let maxQueued: Int
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    /// Waiting jobs are `jobs[head...]`; the array is emptied (keeping capacity) when drained.
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var started = false

    /// `threads` workers named `name` (at most 15 bytes show in `ps`/`top`); `submit` refuses
    /// a job while `maxQueued` are waiting.
    package init(name: String, threads: Int, maxQueued: Int = Int.max) {
        self.name = name
        threadCount = max(1, threads)
        self.maxQueued = maxQueued
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    /// Jobs submitted and not yet taken by a worker.
    package var queued: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return jobs.count - head
    }

    /// Runs `job` on a worker thread. False (and `job` dropped) when `maxQueued` jobs are
    /// already waiting, or no worker thread could be started.
    @discardableResult
    package func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if jobs.count - head >= maxQueued { return false }
        if !started {
            started = true
            var running = 0
            for _ in 0..<threadCount where startThread() { running += 1 }
            if running == 0 {
                started = false
                return false
            }
        }
        jobs.append(job)
        pthread_cond_signal(&cond)
        return true
    }

    private func startThread() -> Bool {
        var tid = pthread_t()
        let box = Unmanaged.passRetained(self)
        let rc = pthread_create(&tid, nil, { arg in
            let pool = Unmanaged<BlockingPool>.fromOpaque(arg!).takeRetainedValue()
            _ = berth_set_thread_name(pool.name)
            pool.work()
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            return false
        }
        pthread_detach(tid)
        return true
    }

    private func work() -> Never {
        while true {
            pthread_mutex_lock(&mutex)
            while head == jobs.count { pthread_cond_wait(&cond, &mutex) }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            pthread_mutex_unlock(&mutex)
            job()
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Monotonic and wall clocks read with `clock_gettime`, no Foundation.
package enum Clock {
    /// Nanoseconds on CLOCK_MONOTONIC.
    @inline(__always)
    package static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Wall-clock time as (seconds, nanoseconds) since the Unix epoch.
    @inline(__always)
    package static func realtime() -> (seconds: Int, nanos: Int) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return (ts.tv_sec, ts.tv_nsec)
    }
}

/// A point on the monotonic clock, in nanoseconds.
package struct Deadline: Comparable, Sendable {
    package var nanos: UInt64
    package init(nanos: UInt64) { self.nanos = nanos }
    package static func now() -> Deadline { Deadline(nanos: Clock.monotonicNanos()) }
    package static func after(milliseconds ms: Int) -> Deadline {
        Deadline(nanos: Clock.monotonicNanos() &+ UInt64(max(0, ms)) &* 1_000_000)
    }
    package static let distantFuture = Deadline(nanos: UInt64.max)
    package static func < (a: Deadline, b: Deadline) -> Bool { a.nanos < b.nanos }
}

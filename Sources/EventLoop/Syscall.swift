#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// The outcome of a non-blocking system call.
package enum IOResult: Equatable {
    /// The call succeeded and returned this value (bytes moved, a new fd…).
    case done(Int)
    /// The call would block (EAGAIN/EWOULDBLOCK): wait for readiness.
    case wouldBlock
}

/// The one system-call wrapper: retries EINTR, maps EAGAIN to `.wouldBlock`, turns other errors
/// into `IOError`, and treats EBADF/EFAULT as bugs (they mean Berth mismanaged a descriptor).
@inline(__always)
package func syscall(_ operation: StaticString, _ body: () -> Int) throws(IOError) -> IOResult {
    while true {
        let r = body()
        if r >= 0 { return .done(r) }
        let e = errno
        switch e {
        case EINTR:
            continue
        case EAGAIN, EWOULDBLOCK:
            return .wouldBlock
        case EBADF, EFAULT:
            preconditionFailure("\(operation): \(IOError.describe(e)) — descriptor misuse is a bug")
        default:
            throw IOError(String(describing: operation), errno: e)
        }
    }
}

/// Like `syscall` for calls where EBADF is a legitimate answer (probing inherited fds).
@inline(__always)
package func syscallAllowingBadFD(_ operation: StaticString, _ body: () -> Int) throws(IOError) -> IOResult {
    while true {
        let r = body()
        if r >= 0 { return .done(r) }
        let e = errno
        if e == EINTR { continue }
        if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
        throw IOError(String(describing: operation), errno: e)
    }
}

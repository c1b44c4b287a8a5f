#if canImport(Glibc)
import Glibc
#endif
import IOCore

/// Why no descriptors were adopted although `LISTEN_FDS` was set.
package enum AdoptionProblem: Equatable, Sendable, CustomStringConvertible {
    /// `LISTEN_FDS` without `LISTEN_PID`: nothing says the sockets are ours (systemd's
    /// `sd_listen_fds` adopts nothing in this case too).
    case missingListenPID(listenFDs: String)
    /// `LISTEN_PID` names another process, e.g. a shell that started Berth without `exec`.
    case pidMismatch(listenPID: Int32, ourPID: Int32)
    /// A variable that does not parse.
    case malformed(variable: String, value: String, reason: String)

    package var description: String {
        switch self {
        case .missingListenPID(let n):
            return "LISTEN_FDS=\(n) is set but LISTEN_PID is not, so nothing says the sockets are meant for this process"
        case .pidMismatch(let theirs, let ours):
            return "LISTEN_PID=\(theirs) is not this process (pid \(ours)): the sockets were meant for another process"
                + " (was berth started by a wrapper that did not exec it?)"
        case .malformed(let variable, let value, let reason):
            return "\(variable)=\"\(value)\" is \(reason)"
        }
    }
}

/// The descriptors handed over at start-up, what each one is, and how they were found.
/// Build it once, first thing in `main`, with `SocketActivation.adopt()`; keep it for the
/// life of the process and resolve every configuration (initial and reloaded) against it.
package struct InheritedSockets: Equatable, Sendable {
    /// How the descriptors were found.
    package enum Source: Equatable, Sendable {
        /// `LISTEN_PID` matched: the `count` descriptors from the first one on were adopted.
        case listenFDs(count: Int)
        /// `LISTEN_FDS` was absent, so, like Caddy, `fd/N` may name any descriptor that was
        /// open at start-up. `descriptors` lists them; nothing was changed, not even the
        /// environment; a descriptor gets `FD_CLOEXEC` and `O_NONBLOCK` when a bind
        /// address resolves to it. Names are meaningless in this mode.
        case probed
        /// `LISTEN_FDS` was set but could not be honoured: nothing was adopted.
        case rejected(AdoptionProblem)
    }

    /// How the descriptors were found.
    package var source: Source
    /// The first descriptor number (3 under systemd; tests use others).
    package var firstFD: Int32
    /// The adopted (or, when probed, open) descriptors, in ascending fd order.
    package var descriptors: [InheritedFD]
    /// Things worth a log line that did not stop adoption (name count mismatch, fcntl errors).
    package var warnings: [String]

    package init(source: Source, firstFD: Int32, descriptors: [InheritedFD], warnings: [String] = []) {
        self.source = source
        self.firstFD = firstFD
        self.descriptors = descriptors
        self.warnings = warnings
    }

    /// Nothing inherited and nothing to probe (for tests and for `validate`).
    package static let none = InheritedSockets(
        source: .listenFDs(count: 0), firstFD: 3, descriptors: [])

    /// The descriptor with number `fd`, if it is in the set.
    package func descriptor(_ fd: Int32) -> InheritedFD? {
        descriptors.first { $0.fd == fd }
    }

    /// True when names come from `LISTEN_FDNAMES` (the set was adopted from systemd).
    package var hasNames: Bool {
        if case .listenFDs = source { return true }
        return false
    }

    /// One line for the start-up log.
    package var summary: String {
        switch source {
        case .listenFDs(let count):
            if count == 0 { return "socket activation: LISTEN_FDS=0, no sockets were passed" }
            let list = descriptors.map { $0.describe(includingName: true) }.joined(separator: ", ")
            return "socket activation: adopted \(count) descriptor\(count == 1 ? "" : "s"): \(list)"
        case .probed:
            let sockets = descriptors.filter { $0.isStreamListener || $0.isDatagram }
            if sockets.isEmpty {
                return "no socket activation: LISTEN_FDS is not set and no listening or datagram socket was open at start-up"
            }
            let list = sockets.map { $0.describe(includingName: false) }.joined(separator: ", ")
            return "LISTEN_FDS is not set: fd/N may name the sockets open at start-up, as with Caddy: \(list)"
        case .rejected(let problem):
            return "socket activation: no sockets adopted: \(problem)"
        }
    }

    /// What was inherited, for the end of an error message (`inherited: fd 3 "x" stream…`).
    package var inventory: String {
        switch source {
        case .listenFDs(let count):
            if count == 0 { return "nothing was inherited (LISTEN_FDS=0)" }
            return "inherited: " + descriptors.map { $0.describe(includingName: true) }.joined(separator: ", ")
        case .probed:
            let sockets = descriptors.filter { $0.isStreamListener || $0.isDatagram }
            let head = "LISTEN_FDS is not set, so berth looked at the descriptors open at start-up, as Caddy does"
            if sockets.isEmpty { return head + ", and none is a listening stream or a datagram socket" }
            let shown = sockets.prefix(8).map { $0.describe(includingName: false) }.joined(separator: ", ")
            let more = sockets.count > 8 ? " and \(sockets.count - 8) more" : ""
            return head + ": " + shown + more
        case .rejected(let problem):
            return "nothing was adopted because " + problem.description
        }
    }
}

/// Adoption of sockets passed by systemd (or Podman) as `sd_listen_fds(3)` describes.
package enum SocketActivation {
    /// The variables the protocol uses; unset after adoption so children do not inherit them.
    package static let variables = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]

    /// Adopts the descriptors described by `environment` for a process whose pid is `pid`.
    ///
    /// - When `LISTEN_FDS` is absent: nothing is adopted; the descriptors open now at or
    ///   above `firstFD` are recorded (`.probed`) so `fd/N` works as with Caddy, which
    ///   ignores the `LISTEN_*` variables and uses fd numbers alone.
    /// - When `LISTEN_PID` is missing, malformed or not `pid`, or `LISTEN_FDS` is malformed:
    ///   nothing is adopted (`.rejected`), and the problem explains why.
    /// - Otherwise descriptors `firstFD ..< firstFD + LISTEN_FDS` are adopted, named from
    ///   the colon-separated `LISTEN_FDNAMES` (`"unknown"` when missing); each gets
    ///   `FD_CLOEXEC`, and each socket `O_NONBLOCK` (a non-socket keeps its flags: its open
    ///   file description may be shared with a terminal or another process).
    ///
    /// This overload never reads or changes the process environment.
    package static func adopt(environment: [String: String], pid: Int32, firstFD: Int32 = 3) -> InheritedSockets {
        guard let fdsText = environment["LISTEN_FDS"] else {
            let open = FDInspector.openDescriptors(from: firstFD)
            let descriptors = open.map { fd in
                InheritedFD(fd: fd, name: InheritedFD.unknownName, kind: FDInspector.inspect(fd))
            }
            return InheritedSockets(source: .probed, firstFD: firstFD, descriptors: descriptors)
        }
        func rejected(_ problem: AdoptionProblem) -> InheritedSockets {
            InheritedSockets(source: .rejected(problem), firstFD: firstFD, descriptors: [])
        }
        guard let pidText = environment["LISTEN_PID"] else {
            return rejected(.missingListenPID(listenFDs: fdsText))
        }
        guard let listenPID = parseDecimal(pidText), listenPID > 0, listenPID <= Int(Int32.max) else {
            return rejected(.malformed(variable: "LISTEN_PID", value: pidText, reason: "not a process id"))
        }
        guard Int32(listenPID) == pid else {
            return rejected(.pidMismatch(listenPID: Int32(listenPID), ourPID: pid))
        }
        guard let count = parseDecimal(fdsText) else {
            return rejected(.malformed(variable: "LISTEN_FDS", value: fdsText, reason: "not a number of descriptors"))
        }
        guard firstFD >= 0, count <= Int(Int32.max) - Int(firstFD) else {
            return rejected(.malformed(variable: "LISTEN_FDS", value: fdsText, reason: "too large"))
        }

        var warnings: [String] = []
        var names: [String] = []
        if let namesText = environment["LISTEN_FDNAMES"] {
            names = namesText.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            if names.count != count {
                warnings.append(
                    "LISTEN_FDNAMES has \(names.count) name\(names.count == 1 ? "" : "s") for LISTEN_FDS=\(count)"
                        + " descriptor\(count == 1 ? "" : "s"); names were matched by position and the rest are \"unknown\"")
            }
        }

        var descriptors: [InheritedFD] = []
        descriptors.reserveCapacity(count)
        for i in 0..<count {
            let fd = firstFD + Int32(i)
            let given = i < names.count ? names[i] : ""
            let name = given.isEmpty ? InheritedFD.unknownName : given
            let kind = FDInspector.inspect(fd)
            switch kind {
            case .notOpen:
                warnings.append("fd \(fd) is listed in LISTEN_FDS but is not open")
            case .socket:
                do throws(IOError) {
                    try FDFlags.setCloseOnExec(fd)
                    try FDFlags.setNonBlocking(fd)
                } catch {
                    warnings.append("fd \(fd): \(error)")
                }
            case .file:
                do throws(IOError) {
                    try FDFlags.setCloseOnExec(fd)
                } catch {
                    warnings.append("fd \(fd): \(error)")
                }
            }
            descriptors.append(InheritedFD(fd: fd, name: name, kind: kind))
        }
        return InheritedSockets(
            source: .listenFDs(count: count), firstFD: firstFD, descriptors: descriptors, warnings: warnings)
    }

    /// Adopts from the real environment and pid (`getenv`, `getpid`). When `LISTEN_FDS` was
    /// set, `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` are then unset (whatever the
    /// outcome, as `sd_listen_fds(1)` does) so child processes do not inherit them. When it
    /// was absent, the environment is left untouched (Caddy-compatible probing).
    ///
    /// Call it first thing in `main`, before any thread starts (it uses `unsetenv`) and
    /// before anything opens a descriptor: in probing mode it records what is open.
    package static func adopt(firstFD: Int32 = 3) -> InheritedSockets {
        let environment = ProcessEnvironment.read(variables)
        let result = adopt(environment: environment, pid: getpid(), firstFD: firstFD)
        if environment["LISTEN_FDS"] != nil {
            ProcessEnvironment.unset(variables)
        }
        return result
    }

    /// A non-negative decimal with digits only (what systemd's `safe_atoi` accepts, minus
    /// signs and blanks), or nil.
    package static func parseDecimal(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return Int(text)
    }
}

/// Reading and changing the process environment without Foundation.
package enum ProcessEnvironment {
    /// The values of `names` that are set.
    package static func read(_ names: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for name in names {
            if let value = getenv(name) { result[name] = String(cString: value) }
        }
        return result
    }

    /// Removes `names` from the environment (not thread-safe: call before threads start).
    package static func unset(_ names: [String]) {
        for name in names { unsetenv(name) }
    }
}

import Glibc
import IOCore
import Testing

@testable import SystemD

@Suite("Adoption of inherited descriptors")
struct AdoptionTests {
    @Test func adoptsSocketsWithNamesTypesAndAddresses() throws {
        let p = PlacedFDs()
        let tcp = p.place(Make.tcpListener4(), slot: 0)
        let udp = p.place(Make.udp4(), slot: 1)
        let dual = p.place(Make.tcpListenerDualStack(), slot: 2)
        let unixName = uniqueName("adopt")
        let unix = p.place(Make.unixListener(abstract: unixName), slot: 3)
        let v6only = p.place(Make.udp6Only(), slot: 4)

        let set = p.adopt(count: 5, names: ["web", "quic", "caddy.socket", "admin", "quic6"])
        #expect(set.source == .listenFDs(count: 5))
        #expect(set.warnings.isEmpty)
        #expect(set.descriptors.map(\.fd) == [tcp, udp, dual, unix, v6only])
        #expect(set.descriptors.map(\.name) == ["web", "quic", "caddy.socket", "admin", "quic6"])

        let d = set.descriptors
        let s0 = try #require(d[0].socket)
        #expect(s0.type == .stream && s0.isListening && s0.family == AF_INET)
        #expect(s0.localAddress == SocketAddress(ip: "127.0.0.1", port: localPort(tcp)))
        #expect(s0.isDualStack == nil)
        #expect(d[0].isStreamListener && !d[0].isDatagram)

        let s1 = try #require(d[1].socket)
        #expect(s1.type == .datagram && !s1.isListening && s1.family == AF_INET)
        #expect(d[1].isDatagram && !d[1].isStreamListener)

        let s2 = try #require(d[2].socket)
        #expect(s2.type == .stream && s2.isListening && s2.family == AF_INET6 && s2.isDualStack == true)

        let s3 = try #require(d[3].socket)
        #expect(s3.type == .stream && s3.isListening && s3.family == AF_UNIX)
        #expect(s3.localAddress == .unix(path: "@" + unixName))

        let s4 = try #require(d[4].socket)
        #expect(s4.isDualStack == false)

        #expect(d[0].description == "fd \(tcp) \"web\" stream listening 127.0.0.1:\(localPort(tcp))")
        #expect(d[1].description == "fd \(udp) \"quic\" datagram 127.0.0.1:\(localPort(udp))")
        #expect(d[2].description == "fd \(dual) \"caddy.socket\" stream listening [::]:\(localPort(dual)) (dual-stack)")
        #expect(d[3].description == "fd \(unix) \"admin\" stream listening unix/@\(unixName)")
        #expect(d[4].description == "fd \(v6only) \"quic6\" datagram [::1]:\(localPort(v6only)) (IPv6 only)")
    }

    @Test func adoptionSetsCloseOnExecAndNonBlocking() {
        let p = PlacedFDs()
        let tcp = p.place(Make.tcpListener4(), slot: 0)
        let udp = p.place(Make.udp4(), slot: 1)
        for fd in [tcp, udp] {
            #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC == 0)
            #expect(fcntl(fd, F_GETFL) & O_NONBLOCK == 0)
        }
        _ = p.adopt(count: 2)
        for fd in [tcp, udp] {
            #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
            #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
        }
    }

    @Test func nonSocketsAreDescribedAndKeepTheirStatusFlags() {
        let p = PlacedFDs()
        let file = p.place(Make.regularFile(), slot: 0)
        let ends = Make.pipeEnds()
        let pipe = p.place(ends.read, slot: 1)
        close(ends.write)
        let null = p.place(Make.devNull(), slot: 2)

        let set = p.adopt(count: 3)
        let kinds = set.descriptors.map(\.kind)
        guard case .file(.regularFile, let path)? = kinds.first else {
            Issue.record("not a regular file: \(kinds)")
            return
        }
        #expect(path?.hasPrefix("/tmp/berth-systemd-test-") == true)
        #expect(kinds[1] == .file(.pipe, path: nil))
        #expect(kinds[2] == .file(.characterDevice, path: "/dev/null"))
        #expect(set.descriptors[2].description == "fd \(null) \"unknown\" character device /dev/null")
        #expect(set.descriptors[1].description == "fd \(pipe) \"unknown\" pipe")
        for fd in [file, pipe, null] {
            #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
            #expect(fcntl(fd, F_GETFL) & O_NONBLOCK == 0)
        }
    }

    @Test func missingNamesAreUnknown() {
        let p = PlacedFDs()
        p.place(Make.tcpListener4(), slot: 0)
        p.place(Make.udp4(), slot: 1)
        let set = p.adopt(count: 2)
        #expect(set.descriptors.map(\.name) == ["unknown", "unknown"])
        #expect(set.warnings.isEmpty)
    }

    @Test func tooFewNamesAreMatchedByPositionWithAWarning() {
        let p = PlacedFDs()
        p.place(Make.tcpListener4(), slot: 0)
        p.place(Make.udp4(), slot: 1)
        p.place(Make.udp4(), slot: 2)
        let set = p.adopt(count: 3, names: ["http", ""])
        #expect(set.descriptors.map(\.name) == ["http", "unknown", "unknown"])
        #expect(set.warnings == [
            "LISTEN_FDNAMES has 2 names for LISTEN_FDS=3 descriptors; names were matched by position and the rest are \"unknown\""
        ])
    }

    @Test func aListedDescriptorThatIsNotOpenIsReported() {
        let p = PlacedFDs()
        p.place(Make.tcpListener4(), slot: 0)
        let set = p.adopt(count: 2)
        #expect(set.descriptors.count == 2)
        #expect(set.descriptors[1].kind == .notOpen)
        #expect(set.warnings == ["fd \(p.base + 1) is listed in LISTEN_FDS but is not open"])
    }

    @Test func pidMismatchAdoptsNothingAndLeavesFlags() {
        let p = PlacedFDs()
        let tcp = p.place(Make.tcpListener4(), slot: 0)
        var env = p.environment(count: 1, names: ["web"])
        env["LISTEN_PID"] = "1234"
        let set = SocketActivation.adopt(environment: env, pid: 5678, firstFD: p.base)
        #expect(set.source == .rejected(.pidMismatch(listenPID: 1234, ourPID: 5678)))
        #expect(set.descriptors.isEmpty)
        #expect(fcntl(tcp, F_GETFL) & O_NONBLOCK == 0)
        #expect(set.summary.contains("LISTEN_PID=1234 is not this process (pid 5678): the sockets were meant for another process"))
    }

    @Test func listenFDsWithoutListenPIDAdoptsNothing() {
        let set = SocketActivation.adopt(environment: ["LISTEN_FDS": "2"], pid: 77, firstFD: 3)
        #expect(set.source == .rejected(.missingListenPID(listenFDs: "2")))
        #expect(set.descriptors.isEmpty)
    }

    @Test(arguments: [
        (["LISTEN_PID": "abc", "LISTEN_FDS": "1"], AdoptionProblem.malformed(
            variable: "LISTEN_PID", value: "abc", reason: "not a process id")),
        (["LISTEN_PID": "0", "LISTEN_FDS": "1"], .malformed(
            variable: "LISTEN_PID", value: "0", reason: "not a process id")),
        (["LISTEN_PID": "-42", "LISTEN_FDS": "1"], .malformed(
            variable: "LISTEN_PID", value: "-42", reason: "not a process id")),
        (["LISTEN_PID": "42", "LISTEN_FDS": "two"], .malformed(
            variable: "LISTEN_FDS", value: "two", reason: "not a number of descriptors")),
        (["LISTEN_PID": "42", "LISTEN_FDS": " 1"], .malformed(
            variable: "LISTEN_FDS", value: " 1", reason: "not a number of descriptors")),
        (["LISTEN_PID": "42", "LISTEN_FDS": ""], .malformed(
            variable: "LISTEN_FDS", value: "", reason: "not a number of descriptors")),
        (["LISTEN_PID": "42", "LISTEN_FDS": "2147483647"], .malformed(
            variable: "LISTEN_FDS", value: "2147483647", reason: "too large")),
    ])
    func malformedVariablesAdoptNothing(env: [String: String], problem: AdoptionProblem) {
        let set = SocketActivation.adopt(environment: env, pid: 42, firstFD: 3)
        #expect(set.source == .rejected(problem))
        #expect(set.descriptors.isEmpty)
    }

    @Test func malformedDescriptionQuotesTheValue() {
        let problem = AdoptionProblem.malformed(variable: "LISTEN_FDS", value: "two", reason: "not a number of descriptors")
        #expect(problem.description == "LISTEN_FDS=\"two\" is not a number of descriptors")
    }

    @Test func listenFDsZeroAdoptsNothingWithoutProblem() {
        let set = SocketActivation.adopt(environment: ["LISTEN_PID": "9", "LISTEN_FDS": "0"], pid: 9, firstFD: 3)
        #expect(set.source == .listenFDs(count: 0))
        #expect(set.descriptors.isEmpty)
        #expect(set.summary == "socket activation: LISTEN_FDS=0, no sockets were passed")
    }

    @Test func summaryListsAdoptedDescriptors() {
        let p = PlacedFDs()
        let tcp = p.place(Make.tcpListener4(), slot: 0)
        let set = p.adopt(count: 1, names: ["web"])
        #expect(set.summary == "socket activation: adopted 1 descriptor: fd \(tcp) \"web\" stream listening 127.0.0.1:\(localPort(tcp))")
    }
}

@Suite("Caddy-compatible probing when LISTEN_FDS is absent")
struct ProbeTests {
    @Test func probesOpenDescriptorsWithoutTouchingThem() throws {
        let p = PlacedFDs()
        let tcp = p.place(Make.tcpListener4(), slot: 0)
        let udp = p.place(Make.udp4(), slot: 1)
        let set = SocketActivation.adopt(environment: ["LISTEN_PID": "1"], pid: getpid(), firstFD: p.base)
        #expect(set.source == .probed)
        #expect(set.descriptor(tcp)?.isStreamListener == true)
        #expect(set.descriptor(udp)?.isDatagram == true)
        #expect(fcntl(tcp, F_GETFL) & O_NONBLOCK == 0)
        #expect(fcntl(tcp, F_GETFD) & FD_CLOEXEC == 0)

        let resolved = try #require(try set.resolve("fd/\(tcp)", location: "Caddyfile:3"))
        #expect(resolved.map(\.fd) == [tcp])
        #expect(fcntl(tcp, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(tcp, F_GETFD) & FD_CLOEXEC != 0)
        let gram = try #require(try set.resolve("fdgram/\(udp)", location: "Caddyfile:4"))
        #expect(gram.map(\.fd) == [udp])
    }

    @Test func probedWrongTypeIsStillAnError() {
        let p = PlacedFDs()
        let udp = p.place(Make.udp4(), slot: 0)
        let set = SocketActivation.adopt(environment: [:], pid: getpid(), firstFD: p.base)
        let e = bindError { _ = try set.resolve("fd/\(udp)", location: "Caddyfile:3") }
        #expect(e?.description.hasPrefix("Caddyfile:3: bind fd/\(udp): fd \(udp) is a datagram socket, not a stream socket; use fdgram/\(udp); LISTEN_FDS is not set, so berth looked at the descriptors open at start-up, as Caddy does: ") == true)
    }

    @Test func descriptorOpenedAfterStartUpIsNotInherited() {
        let p = PlacedFDs()
        let set = SocketActivation.adopt(environment: [:], pid: getpid(), firstFD: p.base)
        let late = p.place(Make.tcpListener4(), slot: 5)
        let e = bindError { _ = try set.resolve("fd/\(late)", location: "Caddyfile:9") }
        guard case .notInherited(_, let fd, _)? = e else {
            Issue.record("expected notInherited, got \(String(describing: e))")
            return
        }
        #expect(fd == late)
        #expect(e?.description.hasPrefix("Caddyfile:9: bind fd/\(late): file descriptor \(late) was not inherited; LISTEN_FDS is not set, so berth looked at the descriptors open at start-up, as Caddy does") == true)
    }

    @Test func namesNeedSocketActivation() {
        let p = PlacedFDs()
        p.place(Make.tcpListener4(), slot: 0)
        let set = SocketActivation.adopt(environment: [:], pid: getpid(), firstFD: p.base)
        let e = bindError { _ = try set.resolve("fdname/unknown", location: "Caddyfile:2") }
        #expect(e?.description == "Caddyfile:2: bind fdname/unknown: no inherited stream listening socket is named \"unknown\"; LISTEN_FDS is not set, so no descriptor has a name (names come from FileDescriptorName= in the .socket unit, passed by systemd socket activation in LISTEN_FDNAMES)")
    }
}

/// These change the real process environment, so they run one at a time.
@Suite("Adoption from the process environment", .serialized)
struct ProcessEnvironmentTests {
    @Test func unsetsTheVariablesAfterAdoption() {
        let p = PlacedFDs()
        let tcp = p.place(Make.tcpListener4(), slot: 0)
        setenv("LISTEN_PID", "\(getpid())", 1)
        setenv("LISTEN_FDS", "1", 1)
        setenv("LISTEN_FDNAMES", "web", 1)
        let set = SocketActivation.adopt(firstFD: p.base)
        #expect(set.source == .listenFDs(count: 1))
        #expect(set.descriptor(tcp)?.name == "web")
        #expect(getenv("LISTEN_PID") == nil)
        #expect(getenv("LISTEN_FDS") == nil)
        #expect(getenv("LISTEN_FDNAMES") == nil)
    }

    @Test func unsetsTheVariablesEvenWhenThePidDoesNotMatch() {
        setenv("LISTEN_PID", "1", 1)
        setenv("LISTEN_FDS", "1", 1)
        let set = SocketActivation.adopt(firstFD: 900)
        #expect(set.source == .rejected(.pidMismatch(listenPID: 1, ourPID: getpid())))
        #expect(getenv("LISTEN_PID") == nil)
        #expect(getenv("LISTEN_FDS") == nil)
    }

    @Test func leavesTheEnvironmentAloneWithoutListenFDs() {
        unsetenv("LISTEN_FDS")
        setenv("LISTEN_PID", "1", 1)
        setenv("LISTEN_FDNAMES", "kept", 1)
        let set = SocketActivation.adopt(firstFD: 900)
        #expect(set.source == .probed)
        #expect(getenv("LISTEN_PID").map { String(cString: $0) } == "1")
        #expect(getenv("LISTEN_FDNAMES").map { String(cString: $0) } == "kept")
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDNAMES")
    }
}

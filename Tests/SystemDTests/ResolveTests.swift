import Glibc
import IOCore
import Testing

@testable import SystemD

/// Example 3's socket unit: `[::]:80`, `[::]:443` streams and a `[::]:443` datagram socket,
/// all named "caddy.socket", at `base`, `base+1`, `base+2`.
private func example3() -> (PlacedFDs, InheritedSockets) {
    let p = PlacedFDs()
    p.place(Make.tcpListenerDualStack(), slot: 0)
    p.place(Make.tcpListenerDualStack(), slot: 1)
    p.place(Make.udp4(), slot: 2)
    return (p, p.adopt(count: 3, names: ["caddy.socket", "caddy.socket", "caddy.socket"]))
}

@Suite("Resolving fd/N and fdgram/N")
struct ResolveNumberTests {
    @Test func fdResolvesAListeningStreamSocket() throws {
        let (p, set) = example3()
        let r = try #require(try set.resolve("fd/\(p.base)", location: "Caddyfile:6"))
        #expect(r.map(\.fd) == [p.base])
        #expect(r[0].isStreamListener)
    }

    @Test func fdgramResolvesADatagramSocket() throws {
        let (p, set) = example3()
        let r = try #require(try set.resolve("fdgram/\(p.base + 2)", location: "Caddyfile:6"))
        #expect(r.map(\.fd) == [p.base + 2])
    }

    @Test func networkNameIsCaseInsensitive() throws {
        let (p, set) = example3()
        #expect(try set.resolve("FD/\(p.base)", location: "")?.map(\.fd) == [p.base])
    }

    @Test func numbersParseLikeGo() throws {
        let (p, set) = example3()
        let n = Int(p.base)
        for text in [
            "\(n)", "0x" + String(n, radix: 16), "0X" + String(n, radix: 16).uppercased(),
            "0o" + String(n, radix: 8), "0" + String(n, radix: 8), "0b" + String(n, radix: 2),
            "0x_" + String(n, radix: 16),
        ] {
            #expect(try set.resolve("fd/\(text)", location: "Caddyfile:1")?.map(\.fd) == [p.base], "fd/\(text)")
        }
    }

    @Test func otherAddressesAreNotResolved() throws {
        let (_, set) = example3()
        for address in ["0.0.0.0", "[::1]", "localhost:80", "unix//run/x.sock", "tcp/0.0.0.0:80", "fdx/3", "fd"] {
            #expect(try set.resolve(address, location: "Caddyfile:1") == nil, "\(address)")
        }
    }

    @Test func notInheritedListsWhatWas() {
        let p = PlacedFDs()
        let fd = p.place(Make.tcpListenerDualStack(), slot: 0)
        let set = p.adopt(count: 1, names: ["caddy.socket"])
        let e = bindError { _ = try set.resolve("fd/\(p.base + 6)", location: "Caddyfile:6") }
        #expect(e?.description == "Caddyfile:6: bind fd/\(p.base + 6): file descriptor \(p.base + 6) was not inherited; inherited: fd \(fd) \"caddy.socket\" stream listening [::]:\(localPort(fd)) (dual-stack)")
    }

    @Test func datagramSocketForFd() {
        let (p, set) = example3()
        let fd = p.base + 2
        let e = bindError { _ = try set.resolve("fd/\(fd)", location: "Caddyfile:6") }
        guard case .wrongSocketType? = e else {
            Issue.record("got \(String(describing: e))")
            return
        }
        #expect(e?.description.hasPrefix("Caddyfile:6: bind fd/\(fd): fd \(fd) is a datagram socket, not a stream socket; use fdgram/\(fd); inherited: fd \(p.base) \"caddy.socket\" stream listening [::]:") == true)
        #expect(e?.description.hasSuffix("fd \(fd) \"caddy.socket\" datagram 127.0.0.1:\(localPort(fd))") == true)
    }

    @Test func streamSocketForFdgram() {
        let (p, set) = example3()
        let e = bindError { _ = try set.resolve("fdgram/\(p.base)", location: "Caddyfile:7") }
        #expect(e?.problem.hasPrefix("fd \(p.base) is a stream socket, not a datagram socket; use fd/\(p.base); inherited: ") == true)
        #expect(e?.description.hasPrefix("Caddyfile:7: bind fdgram/\(p.base): ") == true)
    }

    @Test func regularFileIsNotASocket() {
        let p = PlacedFDs()
        let fd = p.place(Make.regularFile(), slot: 0)
        let set = p.adopt(count: 1)
        let e = bindError { _ = try set.resolve("fd/\(fd)", location: "Caddyfile:6") }
        guard case .notASocket(_, let d, _)? = e, case .file(_, let path?) = d.kind else {
            Issue.record("got \(String(describing: e))")
            return
        }
        #expect(e?.description == "Caddyfile:6: bind fd/\(fd): fd \(fd) is not a socket (it is a regular file, \(path)); inherited: fd \(fd) \"unknown\" regular file \(path)")
    }

    @Test func pipeIsNotASocket() {
        let p = PlacedFDs()
        let ends = Make.pipeEnds()
        let fd = p.place(ends.write, slot: 0)
        close(ends.read)
        let set = p.adopt(count: 1, names: ["p"])
        let e = bindError { _ = try set.resolve("fdgram/\(fd)", location: "Caddyfile:2") }
        #expect(e?.description == "Caddyfile:2: bind fdgram/\(fd): fd \(fd) is not a socket (it is a pipe); inherited: fd \(fd) \"p\" pipe")
    }

    @Test func streamSocketThatIsNotListening() {
        let p = PlacedFDs()
        let fd = p.place(Make.tcpNotListening(), slot: 0)
        let set = p.adopt(count: 1, names: ["conn"])
        let e = bindError { _ = try set.resolve("fd/\(fd)", location: "Caddyfile:6") }
        #expect(e?.description == "Caddyfile:6: bind fd/\(fd): fd \(fd) is a stream socket that is not listening (berth needs a listening socket: ListenStream= with Accept=no); inherited: fd \(fd) \"conn\" stream not listening 127.0.0.1:\(localPort(fd))")
    }

    @Test func seqpacketSocketIsTheWrongType() {
        let p = PlacedFDs()
        let name = uniqueName("seq")
        let fd = p.place(Make.unixListener(abstract: name, type: SOCK_SEQPACKET), slot: 0)
        let set = p.adopt(count: 1, names: ["seq"])
        let e = bindError { _ = try set.resolve("fd/\(fd)", location: "Caddyfile:6") }
        #expect(e?.description == "Caddyfile:6: bind fd/\(fd): fd \(fd) is a seqpacket socket; fd/ needs a listening stream socket (ListenStream=); inherited: fd \(fd) \"seq\" seqpacket listening unix/@\(name)")
    }

    @Test func listedButClosedDescriptor() {
        let p = PlacedFDs()
        let set = p.adopt(count: 1)
        let e = bindError { _ = try set.resolve("fd/\(p.base)", location: "Caddyfile:6") }
        #expect(e?.description == "Caddyfile:6: bind fd/\(p.base): file descriptor \(p.base) is listed in LISTEN_FDS but is not open; inherited: fd \(p.base) \"unknown\" not open")
    }

    @Test func pidMismatchExplainsWhyNothingWasInherited() {
        var env = ["LISTEN_PID": "1234", "LISTEN_FDS": "1"]
        env["LISTEN_FDNAMES"] = "caddy.socket"
        let set = SocketActivation.adopt(environment: env, pid: 5678)
        let e = bindError { _ = try set.resolve("fd/3", location: "Caddyfile:6") }
        #expect(e?.description == "Caddyfile:6: bind fd/3: file descriptor 3 was not inherited; nothing was adopted because LISTEN_PID=1234 is not this process (pid 5678): the sockets were meant for another process (was berth started by a wrapper that did not exec it?)")
    }

    @Test func missingListenPIDExplainsWhyNothingWasInherited() {
        let set = SocketActivation.adopt(environment: ["LISTEN_FDS": "1"], pid: 5678)
        let e = bindError { _ = try set.resolve("fd/3", location: "Caddyfile:6") }
        #expect(e?.description == "Caddyfile:6: bind fd/3: file descriptor 3 was not inherited; nothing was adopted because LISTEN_FDS=1 is set but LISTEN_PID is not, so nothing says the sockets are meant for this process")
    }

    @Test func listenFDsZero() {
        let set = SocketActivation.adopt(environment: ["LISTEN_PID": "5", "LISTEN_FDS": "0"], pid: 5)
        let e = bindError { _ = try set.resolve("fdgram/3", location: "Caddyfile:6") }
        #expect(e?.description == "Caddyfile:6: bind fdgram/3: file descriptor 3 was not inherited; nothing was inherited (LISTEN_FDS=0)")
    }

    @Test func standardStreamsAreNeverInherited() {
        let (p, set) = example3()
        let e = bindError { _ = try set.resolve("fd/1", location: "Caddyfile:6") }
        #expect(e?.problem.hasPrefix("file descriptor 1 was not inherited; inherited descriptors start at fd \(p.base) (fd 1 is standard output); inherited: fd \(p.base) ") == true)
    }

    @Test func invalidNumber() {
        let e = bindError { _ = try InheritedSockets.none.resolve("fd/abc", location: "Caddyfile:6") }
        #expect(e == .invalidFileDescriptor(BindSite(location: "Caddyfile:6", address: "fd/abc"), text: "abc", reason: .syntax))
        #expect(e?.description == "Caddyfile:6: bind fd/abc: invalid file descriptor: \"abc\" is not a number (write it as 3, 0x3, 0o3 or 0b11)")
    }

    @Test func emptyNumber() {
        let e = bindError { _ = try InheritedSockets.none.resolve("fdgram/", location: "Caddyfile:6") }
        #expect(e?.description == "Caddyfile:6: bind fdgram/: invalid file descriptor: \"\" is not a number (write it as 3, 0x3, 0o3 or 0b11)")
    }

    @Test func numberOutOfRange() {
        for text in ["2147483648", "99999999999999999999999"] {
            let e = bindError { _ = try InheritedSockets.none.resolve("fd/\(text)", location: "Caddyfile:6") }
            #expect(e?.description == "Caddyfile:6: bind fd/\(text): invalid file descriptor: \(text) is out of range")
        }
    }

    @Test func messageWithoutLocationAndWithAnotherDirective() {
        let e = bindError { _ = try InheritedSockets.none.resolve("fd/x", location: "", directive: "default_bind") }
        #expect(e?.description == "default_bind fd/x: invalid file descriptor: \"x\" is not a number (write it as 3, 0x3, 0o3 or 0b11)")
    }
}

@Suite("Resolving fdname/NAME and fdgramname/NAME")
struct ResolveNameTests {
    /// Three socket units in any order: "https" (two streams), "quic" (datagram), "http".
    private func units() -> (PlacedFDs, InheritedSockets) {
        let p = PlacedFDs()
        p.place(Make.tcpListenerDualStack(), slot: 0)  // https
        p.place(Make.udp4(), slot: 1)  // quic
        p.place(Make.tcpListener4(), slot: 2)  // http
        p.place(Make.tcpListener4(), slot: 3)  // https
        return (p, p.adopt(count: 4, names: ["https", "quic", "http", "https"]))
    }

    @Test func nameResolvesEveryMatchingSocketInOrder() throws {
        let (p, set) = units()
        #expect(try set.resolve("fdname/https", location: "Caddyfile:1")?.map(\.fd) == [p.base, p.base + 3])
        #expect(try set.resolve("fdname/http", location: "Caddyfile:1")?.map(\.fd) == [p.base + 2])
        #expect(try set.resolve("fdgramname/quic", location: "Caddyfile:1")?.map(\.fd) == [p.base + 1])
    }

    @Test func indexPicksOneSocket() throws {
        let (p, set) = units()
        #expect(try set.resolve("fdname/https/0", location: "Caddyfile:1")?.map(\.fd) == [p.base])
        #expect(try set.resolve("fdname/https/1", location: "Caddyfile:1")?.map(\.fd) == [p.base + 3])
        #expect(try set.resolve("fdgramname/quic/0", location: "Caddyfile:1")?.map(\.fd) == [p.base + 1])
    }

    @Test func indexOutOfRange() {
        let (p, set) = units()
        let e = bindError { _ = try set.resolve("fdname/https/2", location: "Caddyfile:4") }
        #expect(e?.description == "Caddyfile:4: bind fdname/https/2: index 2 is out of range: 2 stream listening sockets are named \"https\" (fd \(p.base), fd \(p.base + 3)), so the index must be 0 to 1 (counting from 0)")
        let one = bindError { _ = try set.resolve("fdgramname/quic/1", location: "Caddyfile:5") }
        #expect(one?.problem == "index 1 is out of range: 1 datagram socket is named \"quic\" (fd \(p.base + 1)), so the index must be 0 (counting from 0)")
    }

    @Test func unknownNameListsTheInheritedNames() {
        let (p, set) = units()
        let e = bindError { _ = try set.resolve("fdname/htps", location: "Caddyfile:3") }
        let d = set.descriptors
        #expect(e?.description == "Caddyfile:3: bind fdname/htps: no inherited stream listening socket is named \"htps\"; inherited names: \"https\" (fd \(p.base) \(d[0].what), fd \(p.base + 3) \(d[3].what)), \"quic\" (fd \(p.base + 1) \(d[1].what)), \"http\" (fd \(p.base + 2) \(d[2].what))")
    }

    @Test func datagramNameUsedAsStreamSuggestsTheOtherForm() {
        let (p, set) = units()
        let e = bindError { _ = try set.resolve("fdname/quic", location: "Caddyfile:3") }
        #expect(e?.problem.hasPrefix("no inherited stream listening socket is named \"quic\" (fd \(p.base + 1) is datagram 127.0.0.1:\(localPort(p.base + 1))); use fdgramname/quic; inherited names: ") == true)
        let s = bindError { _ = try set.resolve("fdgramname/http", location: "Caddyfile:3") }
        #expect(s?.problem.hasPrefix("no inherited datagram socket is named \"http\" (fd \(p.base + 2) is stream listening 127.0.0.1:\(localPort(p.base + 2))); use fdname/http; inherited names: ") == true)
    }

    @Test func unknownIsTheNameOfUnnamedDescriptors() throws {
        let p = PlacedFDs()
        p.place(Make.tcpListener4(), slot: 0)
        let set = p.adopt(count: 1)
        #expect(try set.resolve("fdname/unknown", location: "")?.map(\.fd) == [p.base])
    }

    @Test func namesWithSlashesNeedAnIndex() throws {
        let p = PlacedFDs()
        p.place(Make.tcpListener4(), slot: 0)
        let set = p.adopt(count: 1, names: ["a/b"])
        #expect(try set.resolve("fdname/a/b/0", location: "")?.map(\.fd) == [p.base])
        let e = bindError { _ = try set.resolve("fdname/a/b", location: "Caddyfile:2") }
        #expect(e?.description == "Caddyfile:2: bind fdname/a/b: \"b\" is not a socket index (write fdname/NAME/0, /1…)")
    }

    @Test func missingName() {
        let e = bindError { _ = try InheritedSockets.none.resolve("fdgramname/", location: "Caddyfile:8") }
        #expect(e?.description == "Caddyfile:8: bind fdgramname/: missing socket name (write fdgramname/NAME, NAME as in FileDescriptorName=)")
        let e2 = bindError { _ = try InheritedSockets.none.resolve("fdname//0", location: "Caddyfile:8") }
        #expect(e2?.problem == "missing socket name (write fdname/NAME, NAME as in FileDescriptorName=)")
    }

    @Test func nameAfterPidMismatch() {
        let set = SocketActivation.adopt(
            environment: ["LISTEN_PID": "1234", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "web"], pid: 5678)
        let e = bindError { _ = try set.resolve("fdname/web", location: "Caddyfile:1") }
        #expect(e?.problem == "no inherited stream listening socket is named \"web\"; nothing was adopted because LISTEN_PID=1234 is not this process (pid 5678): the sockets were meant for another process (was berth started by a wrapper that did not exec it?)")
    }
}

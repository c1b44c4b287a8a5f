import Foundation
import Glibc
import Testing

@testable import IOCore

/// A fresh, unique path under /tmp; removed by the caller.
func tempPath(_ tag: String) -> String {
    "/tmp/berth-iocore-\(tag)-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
}

/// A pipe; the caller owns both ends.
func makePipe() -> (read: Int32, write: Int32) {
    var fds: [Int32] = [-1, -1]
    precondition(pipe(&fds) == 0)
    return (fds[0], fds[1])
}

/// Polls `fd` for `events` without waiting.
func pollNow(_ fd: Int32, _ events: Int16 = Int16(POLLIN)) -> Int16 {
    var p = pollfd(fd: fd, events: events, revents: 0)
    _ = poll(&p, 1, 0)
    return p.revents
}

@Suite("FileDescriptor")
struct FileDescriptorTests {
    @Test func closesWhenOwnerGoesAway() {
        let (r, w) = makePipe()
        defer { close(r) }
        do {
            let owner = FileDescriptor(owning: w)
            #expect(owner.raw == w)
            #expect(pollNow(r) == 0)  // writer still open: nothing to read, no hang-up
        }
        // The only write end is closed: the read end sees end-of-file.
        var byte: UInt8 = 0
        #expect(read(r, &byte, 1) == 0)
    }

    @Test func closesOnceAfterBeingMoved() {
        let (r, w) = makePipe()
        defer { close(r) }
        func pass(_ fd: consuming FileDescriptor) -> FileDescriptor { fd }
        do {
            let a = FileDescriptor(owning: w)
            let b = pass(a)
            #expect(pollNow(r) == 0)  // the move did not close it
            var one: UInt8 = 0x31
            #expect(write(b.raw, &one, 1) == 1)
        }
        var buf = [UInt8](repeating: 0, count: 4)
        #expect(read(r, &buf, 4) == 1)
        #expect(read(r, &buf, 4) == 0)  // then EOF: closed at the end of scope
    }

    @Test func releaseDoesNotClose() {
        let (r, w) = makePipe()
        defer { close(r) }
        let owner = FileDescriptor(owning: w)
        let raw = owner.release()
        #expect(raw == w)
        #expect(fcntl(w, F_GETFD) >= 0)
        var one: UInt8 = 0x41
        #expect(write(w, &one, 1) == 1)
        #expect(pollNow(r) & Int16(POLLIN) != 0)
        #expect(pollNow(r) & Int16(POLLHUP) == 0)
        close(w)
    }

    @Test func flagsHelpers() throws {
        let (r, w) = makePipe()
        defer { close(r); close(w) }
        #expect(fcntl(r, F_GETFL) & O_NONBLOCK == 0)
        #expect(fcntl(r, F_GETFD) & FD_CLOEXEC == 0)
        try FDFlags.setNonBlocking(r)
        try FDFlags.setCloseOnExec(r)
        #expect(fcntl(r, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(r, F_GETFD) & FD_CLOEXEC != 0)
        // Idempotent.
        try FDFlags.setNonBlocking(r)
        try FDFlags.setCloseOnExec(r)
        #expect(fcntl(r, F_GETFL) & O_NONBLOCK != 0)
        var byte: UInt8 = 0
        #expect(read(r, &byte, 1) == -1 && errno == EAGAIN)
    }

    @Test func flagsHelpersReportBadDescriptors() {
        #expect(throws: IOError("fcntl(F_GETFL)", errno: EBADF)) { try FDFlags.setNonBlocking(-1) }
        #expect(throws: IOError("fcntl(F_GETFD)", errno: EBADF)) { try FDFlags.setCloseOnExec(-1) }
    }

    @Test func ioErrorDescription() {
        #expect(IOError("accept4", errno: EMFILE).description == "accept4: Too many open files")
        #expect(IOError.describe(ENOENT) == "No such file or directory")
        #expect(IOError("a", errno: 1) == IOError("a", errno: 1))
        #expect(IOError("a", errno: 1) != IOError("a", errno: 2))
    }
}

@Suite("FileIO")
struct FileIOTests {
    /// The process umask, read without changing it (tests run in parallel).
    private func currentUmask() -> mode_t {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("Umask:") {
            return mode_t(line.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) ?? 0o022
        }
        return 0o022
    }

    @Test func readAllReadsLargeFiles() throws {
        let path = tempPath("read")
        defer { unlink(path) }
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try FileIO.readAll(path) == bytes)
        #expect(FileIO.isRegularFile(path))
    }

    @Test func readAllEmptyFile() throws {
        let path = tempPath("empty")
        defer { unlink(path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(try FileIO.readAll(path) == [])
    }

    @Test func readAllErrors() throws {
        let missing = tempPath("missing")
        #expect(throws: IOError("open \(missing)", errno: ENOENT)) { try FileIO.readAll(missing) }
        let path = tempPath("limit")
        defer { unlink(path) }
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: path))
        #expect(throws: IOError("read \(path)", errno: EFBIG)) { try FileIO.readAll(path, limit: 99) }
        #expect(try FileIO.readAll(path, limit: 100).count == 100)
        // A directory opens but cannot be read.
        #expect(throws: IOError("read /tmp", errno: EISDIR)) { try FileIO.readAll("/tmp") }
        #expect(!FileIO.isRegularFile("/tmp"))
        #expect(!FileIO.isRegularFile(missing))
    }

    @Test func writeAtomicallyCreatesWithModeAndReplaces() throws {
        let path = tempPath("write")
        defer { unlink(path) }
        try FileIO.writeAtomically(path, Array("first".utf8), mode: 0o640)
        #expect(try FileIO.readAll(path) == Array("first".utf8))
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o640 & ~currentUmask())
        try FileIO.writeAtomically(path, Array("second, longer".utf8), mode: 0o600)
        #expect(try FileIO.readAll(path) == Array("second, longer".utf8))
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        // No temporary file is left behind.
        #expect(access(path + ".tmp-\(getpid())", F_OK) != 0)
        try FileIO.writeAtomically(path, [])
        #expect(try FileIO.readAll(path) == [])
    }

    @Test func writeAtomicallyFailsInMissingDirectory() {
        let path = tempPath("nodir") + "/file"
        #expect(throws: IOError("open \(path).tmp-\(getpid())", errno: ENOENT)) {
            try FileIO.writeAtomically(path, [1, 2, 3])
        }
    }

    @Test func writeAllWritesEverything() {
        let (r, w) = makePipe()
        defer { close(r) }
        let text = String(repeating: "abc", count: 1000)
        FileIO.writeAll(w, text)
        close(w)
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(r, &buf, buf.count)
            if n <= 0 { break }
            got += buf[0..<n]
        }
        #expect(String(decoding: got, as: UTF8.self) == text)
    }
}

@Suite("Clock and Deadline")
struct ClockTests {
    @Test func monotonicAdvances() {
        let a = Clock.monotonicNanos()
        usleep(2000)
        let b = Clock.monotonicNanos()
        #expect(b > a)
        #expect(b - a >= 2_000_000)
        #expect(b - a < 5_000_000_000)
    }

    @Test func realtimeMatchesFoundation() {
        let (s, ns) = Clock.realtime()
        let f = Date().timeIntervalSince1970
        #expect(abs(Double(s) + Double(ns) / 1e9 - f) < 2)
        #expect((0..<1_000_000_000).contains(ns))
    }

    @Test func deadlines() {
        let before = Clock.monotonicNanos()
        let d = Deadline.after(milliseconds: 250)
        let after = Clock.monotonicNanos()
        #expect(d.nanos >= before + 250_000_000)
        #expect(d.nanos <= after + 250_000_000)
        let past = Deadline.after(milliseconds: -5)
        #expect(past.nanos >= before && past.nanos <= Clock.monotonicNanos())
        #expect(Deadline.now() < d)
        #expect(d < Deadline.distantFuture)
        #expect(Deadline(nanos: 5) == Deadline(nanos: 5))
        #expect(max(Deadline(nanos: 1), Deadline(nanos: 9)) == Deadline(nanos: 9))
    }
}

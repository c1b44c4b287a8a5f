#if canImport(Glibc)
import Glibc
#endif
import CZlib
import Config
import IOCore

/// One log writer (Caddy's writer key): stderr, stdout, discard, or a file rolled by size the
/// way Caddy's file writer (timberjack) does it: before a write would take the file past
/// `roll_size`, it is renamed to `NAME-<UTC 2006-01-02T15-04-05.000>-size.EXT`, a new file is
/// opened, and a background thread gzips rolled files and keeps `roll_keep` of them (and none
/// older than `roll_keep_for`).
///
/// Writes come from each loop's once-per-iteration flush and from cold-path process logs, under
/// one lock; the hot path only appends to per-loop buffers.
package final class LogOutput: @unchecked Sendable {
    package let config: LogWriterConfig
    private let lock = Mutex()
    private var fd: Int32
    private var size = 0
    private let owned: Bool
    private let janitor: LogJanitor?
    /// stderr/stdout is a journald stream: lines get `<N>` priority prefixes (see `journalFD`).
    private let journal: Bool
    /// Reused for the prefixed copy of a batch (under `lock`).
    private var scratch: [UInt8] = []

    /// Opens the writer; a file that cannot be opened is a config error.
    package init(_ config: LogWriterConfig) throws(ConfigError) {
        self.config = config
        switch config.output {
        case .stderr: fd = 2; owned = false; janitor = nil; journal = LogOutput.stderrIsJournal
        case .stdout: fd = 1; owned = false; janitor = nil; journal = LogOutput.stdoutIsJournal
        case .discard: fd = -1; owned = false; janitor = nil; journal = false
        case .file:
            let path = config.filename
            if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
                LogOutput.makeDirectories(String(path[path.startIndex..<slash]))
            }
            let mode = config.mode ?? 0o600
            let f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode_t(mode))
            if f < 0 {
                throw ConfigError("opening log writer \(path): \(String(cString: strerror(errno)))")
            }
            var st = stat()
            if fstat(f, &st) == 0 {
                size = Int(st.st_size)
                if let m = config.mode, st.st_mode & 0o7777 != mode_t(m) { _ = fchmod(f, mode_t(m)) }
            }
            fd = f
            owned = true
            janitor = config.roll ? LogJanitor(config) : nil
            journal = false
        }
    }

    deinit {
        if owned && fd >= 0 { close(fd) }
    }

    /// Writes whole lines; rolls first when they would not fit. Never blocks on a full pipe:
    /// stderr/stdout that stop accepting drop the rest of this batch.
    package func write(_ p: UnsafeRawBufferPointer) {
        guard fd >= 0 || config.output == .file, p.count > 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        if config.output == .file && config.roll && size > 0 && size + p.count > config.effectiveRollBytes {
            roll()
        }
        guard fd >= 0 else { return }
        if journal {
            scratch.removeAll(keepingCapacity: true)
            LogOutput.appendWithPriorities(p, to: &scratch)
            scratch.withUnsafeBytes { writeLocked($0) }
        } else {
            writeLocked(p)
        }
    }

    /// Writes `p` whole unless the descriptor stops taking bytes (lock held).
    private func writeLocked(_ p: UnsafeRawBufferPointer) {
        var off = 0
        while off < p.count {
            let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
            if n > 0 {
                off += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        size += off
    }

    package func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    // MARK: journald

    /// Whether descriptor `fd` is the stream journald gave the service: systemd sets
    /// `JOURNAL_STREAM=<device>:<inode>` of the stdout/stderr it connected to the journal, and
    /// a descriptor with that device and inode is still it (a redirect in between would not be).
    static func isJournal(_ fd: Int32) -> Bool {
        guard let v = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: v).split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    static let stderrIsJournal = isJournal(2)
    static let stdoutIsJournal = isJournal(1)

    /// Copies whole lines into `out`, each prefixed with its sd-daemon(3) priority (`<3>` error,
    /// `<4>` warn, `<6>` info, `<7>` debug, `<2>` panic/fatal), which journald strips and stores
    /// as PRIORITY= — so `journalctl -p warning` finds Berth's warnings. The level is read from
    /// the line itself: JSON lines start `{"level":"…"`, console lines carry it after the first
    /// tab.
    static func appendWithPriorities(_ p: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.reserveCapacity(out.count + p.count + 64)
        var start = 0
        while start < p.count {
            var end = start
            while end < p.count && p[end] != 10 { end += 1 }
            if end < p.count { end += 1 }  // keep the newline
            let line = UnsafeRawBufferPointer(rebasing: p[start..<end])
            out.append(60)  // <
            out.append(48 + priority(of: line))
            out.append(62)  // >
            out.append(contentsOf: line)
            start = end
        }
    }

    /// The syslog priority digit of one log line (info when it names no level).
    static func priority(of line: UnsafeRawBufferPointer) -> UInt8 {
        let jsonPrefix: StaticString = "{\"level\":\""
        var i = 0
        var isJSON = line.count > jsonPrefix.utf8CodeUnitCount
        if isJSON {
            for k in 0..<jsonPrefix.utf8CodeUnitCount where line[k] != jsonPrefix.utf8Start[k] {
                isJSON = false
                break
            }
        }
        let stop: UInt8
        if isJSON {
            i = jsonPrefix.utf8CodeUnitCount
            stop = 34  // "
        } else {
            while i < line.count && line[i] != 9 { i += 1 }
            i += 1
            stop = 9
        }
        var word: UInt64 = 0  // the level, lowercased, up to 8 bytes
        var n = 0
        while i < line.count && line[i] != stop && line[i] != 10 && n < 8 {
            word = word << 8 | UInt64(line[i] | 0x20)
            i += 1
            n += 1
        }
        switch word {
        case 0x6465_6275_67: return 7                 // debug
        case 0x696e_666f: return 6                    // info
        case 0x7761_726e: return 4                    // warn
        case 0x6572_726f_72: return 3                 // error
        case 0x6470_616e_6963, 0x7061_6e69_63, 0x6661_7461_6c: return 2  // dpanic, panic, fatal
        default: return 6
        }
    }

    /// Renames the file to its backup name and opens a new one (lock held).
    private func roll() {
        let path = config.filename
        let backup = LogJanitor.backupName(path, local: config.rollLocalTime)
        if rename(path, backup) != 0 && errno != ENOENT {
            // Keep writing to the same file rather than lose lines. (ENOENT: someone removed
            // the file; start a new one.)
            return
        }
        let f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode_t(config.mode ?? 0o600))
        if f >= 0 {
            close(fd)
            fd = f
            size = 0
        }
        janitor?.schedule()
    }

    static func makeDirectories(_ dir: String) {
        var prefix = dir.hasPrefix("/") ? "" : "."
        for part in dir.split(separator: "/") {
            prefix += "/" + part
            _ = mkdir(prefix, 0o700)
        }
    }
}

/// Gzips and prunes rolled files on a background thread, one job at a time per file.
final class LogJanitor: @unchecked Sendable {
    private let config: LogWriterConfig
    private let lock = Mutex()
    private var running = false
    private var again = false

    init(_ config: LogWriterConfig) { self.config = config }

    /// `dir/name-2006-01-02T15-04-05.000-size.ext` (UTC unless `roll_local_time`).
    static func backupName(_ path: String, local: Bool) -> String {
        let (sec, nsec) = Clock.realtime()
        var t = time_t(sec)
        var tm = tm()
        if local { localtime_r(&t, &tm) } else { gmtime_r(&t, &tm) }
        func pad(_ v: Int32, _ n: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, n - s.count)) + s
        }
        let stamp = "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T"
            + "\(pad(tm.tm_hour, 2))-\(pad(tm.tm_min, 2))-\(pad(tm.tm_sec, 2)).\(pad(Int32(nsec / 1_000_000), 3))"
        let (dir, base) = split(path)
        let (stem, ext) = splitExtension(base)
        return dir + stem + "-" + stamp + "-size" + ext
    }

    /// ("dir/", "file") — dir keeps its trailing slash, or is "" for a bare name.
    static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[...slash]), String(path[path.index(after: slash)...]))
    }

    static func splitExtension(_ base: String) -> (String, String) {
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return (base, "") }
        return (String(base[..<dot]), String(base[dot...]))
    }

    func schedule() {
        lock.lock()
        if running {
            again = true
            lock.unlock()
            return
        }
        running = true
        lock.unlock()
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let j = Unmanaged<LogJanitor>.fromOpaque(arg!).takeRetainedValue()
            j.run()
            return nil
        }, box.toOpaque())
        if rc == 0 {
            pthread_detach(tid)
        } else {
            box.release()
            lock.lock()
            running = false
            lock.unlock()
        }
    }

    private func run() {
        while true {
            cleanUp()
            lock.lock()
            if !again {
                running = false
                lock.unlock()
                return
            }
            again = false
            lock.unlock()
        }
    }

    /// Compresses uncompressed backups (when enabled), then removes the oldest beyond
    /// `roll_keep` and any older than `roll_keep_for`.
    func cleanUp() {
        let (dir, base) = LogJanitor.split(config.filename)
        let (stem, ext) = LogJanitor.splitExtension(base)
        let prefix = stem + "-"
        var backups: [String] = []
        let dirPath = dir.isEmpty ? "." : dir
        guard let d = opendir(dirPath) else { return }
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard name.hasPrefix(prefix), name.hasSuffix(ext + ".gz") || name.hasSuffix(ext), name != base,
                name.hasSuffix("-size" + ext) || name.hasSuffix("-size" + ext + ".gz")
            else { continue }
            backups.append(name)
        }
        closedir(d)
        // The timestamp sorts like time; newest first.
        backups.sort(by: >)
        var keep: [String] = []
        let now = Clock.realtime().seconds
        let maxAge = config.effectiveRollKeepDays * 86_400
        for (i, name) in backups.enumerated() {
            var st = stat()
            let full = dir + name
            let old = maxAge > 0 && stat(full, &st) == 0 && now - Int(st.st_mtim.tv_sec) > maxAge
            if (config.effectiveRollKeep > 0 && i >= config.effectiveRollKeep) || old {
                unlink(full)
            } else {
                keep.append(full)
            }
        }
        guard config.effectiveGzip else { return }
        for full in keep where !full.hasSuffix(".gz") {
            LogJanitor.gzip(full)
        }
    }

    /// `file` → `file.gz` (same mode), then removes `file`; on failure the partial `.gz` goes.
    static func gzip(_ path: String) {
        let src = open(path, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { return }
        defer { close(src) }
        var st = stat()
        let mode = fstat(src, &st) == 0 ? st.st_mode & 0o7777 : 0o600
        let target = path + ".gz"
        let dst = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard dst >= 0 else { return }
        guard let gz = gzdopen(dst, "wb") else {
            close(dst)
            unlink(target)
            return
        }
        var ok = true
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buf.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { ok = false; break }
            if n == 0 { break }
            let w = buf.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32(n)) }
            if w != Int32(n) { ok = false; break }
        }
        if gzclose(gz) != Z_OK { ok = false }
        if ok { unlink(path) } else { unlink(target) }
    }
}

#if canImport(Glibc)
    import Glibc
#endif

/// What `import FILE_OR_GLOB` may see of the file system. The parser resolves paths and globs
/// through it, so tests can use an in-memory tree and the fuzzer can forbid file imports.
package protocol ImportResolver: Sendable {
    /// The working directory, used to make the top-level file name absolute (Go's `filepath.Abs`).
    func currentDirectory() throws(ImportResolverError) -> String

    /// Whether `path` exists (without following a final symlink, like `os.Lstat`).
    func exists(_ path: String) -> Bool

    /// Whether `path` is a directory (following symlinks, like `os.Stat`).
    func isDirectory(_ path: String) -> Bool

    /// The names in directory `path` (without `.` and `..`), any order; `nil` if unreadable.
    func directoryEntries(_ path: String) -> [String]?

    /// The contents of file `path`.
    func readFile(_ path: String) throws(ImportResolverError) -> [UInt8]
}

/// A failure of an ``ImportResolver`` operation, in Go's `*PathError` words.
package struct ImportResolverError: Error, Sendable, CustomStringConvertible {
    /// Whether opening (or checking) the file failed, or reading it.
    package enum Stage: Sendable {
        /// `Could not import FILE: …`
        case open
        /// `Could not read imported file FILE: …`
        case read
    }

    /// The text Caddy would show, e.g. `open /etc/x: permission denied`.
    package var description: String
    /// Where it failed.
    package var stage: Stage

    /// Creates an error with Go-style text.
    package init(_ description: String, stage: Stage = .open) {
        self.description = description
        self.stage = stage
    }
}

extension ImportResolver {
    /// Go's `filepath.Abs` (Caddy's `FastAbs`): cleans absolute paths, joins relative ones to the
    /// working directory.
    func absolutePath(_ path: String) throws(ImportResolverError) -> String {
        if GoPath.isAbs(path) { return GoPath.clean(path) }
        return GoPath.join(try currentDirectory(), path)
    }

    /// Go's `filepath.Glob`: sorted matches; I/O errors are ignored; a malformed pattern throws.
    func glob(_ pattern: String) throws(GoPathError) -> [String] {
        try glob(pattern, depth: 0)
    }

    private func glob(_ pattern: String, depth: Int) throws(GoPathError) -> [String] {
        if depth >= 10_000 { throw .badPattern }
        _ = try GoPath.match(pattern, "")
        if !GoPath.hasMeta(pattern) {
            return exists(pattern) ? [pattern] : []
        }
        var (dir, file) = GoPath.split(pattern)
        switch dir {
        case "": dir = "."
        case "/": break
        default: dir = String(dir.utf8.dropLast()) ?? dir
        }
        if !GoPath.hasMeta(dir) {
            return try globDirectory(dir, file, into: [])
        }
        if dir.bytesEqual(pattern) { throw .badPattern }
        var matches: [String] = []
        for d in try glob(dir, depth: depth + 1) {
            matches = try globDirectory(d, file, into: matches)
        }
        return matches
    }

    private func globDirectory(_ dir: String, _ pattern: String, into matches: [String])
        throws(GoPathError) -> [String]
    {
        var result = matches
        guard isDirectory(dir), let names = directoryEntries(dir) else { return result }
        // Go sorts names byte-wise.
        let sorted = names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        for name in sorted where try GoPath.match(pattern, name) {
            result.append(GoPath.join(dir, name))
        }
        return result
    }
}

/// The real file system, through Glibc.
package struct LocalImportResolver: ImportResolver {
    /// The directory relative names are resolved against; `nil` means the process's.
    package var workingDirectory: String?

    /// Creates a resolver over the real file system. A `workingDirectory` replaces the process's
    /// working directory for relative names (tests use it; paths passed to the file system are
    /// made absolute first).
    package init(workingDirectory: String? = nil) {
        self.workingDirectory = workingDirectory
    }

    /// ``workingDirectory``, else `getcwd`.
    package func currentDirectory() throws(ImportResolverError) -> String {
        if let workingDirectory { return workingDirectory }
        #if canImport(Glibc)
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard getcwd(&buffer, buffer.count) != nil else {
                throw ImportResolverError("getwd: " + Self.errnoText(errno))
            }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #else
            throw ImportResolverError("getwd: unsupported platform")
        #endif
    }

    /// `path` made absolute against ``workingDirectory`` when one is set.
    private func resolve(_ path: String) -> String {
        guard let workingDirectory, !GoPath.isAbs(path) else { return path }
        return GoPath.join(workingDirectory, path)
    }

    /// `lstat` succeeds.
    package func exists(_ path: String) -> Bool {
        #if canImport(Glibc)
            var st = stat()
            return lstat(resolve(path), &st) == 0
        #else
            return false
        #endif
    }

    /// `stat` says directory.
    package func isDirectory(_ path: String) -> Bool {
        #if canImport(Glibc)
            var st = stat()
            return stat(resolve(path), &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        #else
            return false
        #endif
    }

    /// `readdir` names without `.` and `..`.
    package func directoryEntries(_ path: String) -> [String]? {
        #if canImport(Glibc)
            guard let dir = opendir(resolve(path)) else { return nil }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                    let bytes = raw.prefix { $0 != 0 }
                    return String(decoding: bytes, as: UTF8.self)
                }
                if name != "." && name != ".." { names.append(name) }
            }
            return names
        #else
            return nil
        #endif
    }

    /// Reads the whole file; a directory is `is a directory`.
    package func readFile(_ path: String) throws(ImportResolverError) -> [UInt8] {
        #if canImport(Glibc)
            let fd = open(resolve(path), O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw ImportResolverError("open \(path): " + Self.errnoText(errno)) }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                throw ImportResolverError("stat \(path): " + Self.errnoText(errno))
            }
            if (st.st_mode & S_IFMT) == S_IFDIR { throw ImportResolverError("is a directory") }
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n == 0 { break }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ImportResolverError("read \(path): " + Self.errnoText(errno), stage: .read)
                }
                out.append(contentsOf: chunk[0..<n])
            }
            return out
        #else
            throw ImportResolverError("open \(path): unsupported platform")
        #endif
    }

    /// Go's lower-case errno texts (`no such file or directory`, `permission denied`, …).
    static func errnoText(_ code: Int32) -> String {
        #if canImport(Glibc)
            guard let c = strerror(code) else { return "errno \(code)" }
            var text = String(cString: c)
            if let first = text.first, first.isUppercase,
                text.dropFirst().first.map({ !$0.isUppercase }) ?? true
            {
                text = first.lowercased() + text.dropFirst()
            }
            return text
        #else
            return "errno \(code)"
        #endif
    }
}

/// Refuses every file import (`File to import not found`): snippets still work. For fuzzing and
/// for parsing untrusted input.
package struct NoFileImportResolver: ImportResolver {
    /// Creates the resolver.
    package init() {}

    /// `/`.
    package func currentDirectory() throws(ImportResolverError) -> String { "/" }
    /// Nothing exists.
    package func exists(_ path: String) -> Bool { false }
    /// Nothing is a directory.
    package func isDirectory(_ path: String) -> Bool { false }
    /// No listings.
    package func directoryEntries(_ path: String) -> [String]? { nil }
    /// Always fails.
    package func readFile(_ path: String) throws(ImportResolverError) -> [UInt8] {
        throw ImportResolverError("open \(path): file imports are disabled")
    }
}

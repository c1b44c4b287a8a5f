#if canImport(Glibc)
import Glibc
#endif
import Config
import IOCore

/// What `berth systemd-units` was asked for.
package struct SystemdUnitsCommand: Sendable {
    package var run: RunOptions
    package var name = "caddy"
    package var image: String? = nil
    package var service = false
    package var binary: String? = nil
    package var ports: [Int: Int] = [:]
    package var network: String? = nil
    package var exitIdle: String? = nil
    /// Write the files here instead of printing them.
    package var outDir: String? = nil
    package init(run: RunOptions) { self.run = run }
}

extension Launcher {
    /// `berth systemd-units`: loads the config as `validate` does, derives the units, prints
    /// them (`# file: NAME` before each) or writes them into `--out`.
    package static func systemdUnits(_ c: SystemdUnitsCommand) -> Int32 {
        do {
            let files = try generateUnits(c)
            if let dir = c.outDir {
                if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                    FileIO.writeAll(2, "Error: \(IOError("creating \(dir)", errno: errno))\n")
                    return 1
                }
                for f in files {
                    let path = (dir.hasSuffix("/") ? dir : dir + "/") + f.name
                    do {
                        try FileIO.writeAtomically(path, Array(f.text.utf8))
                    } catch {
                        FileIO.writeAll(2, "Error: writing \(path): \(error)\n")
                        return 1
                    }
                    FileIO.writeAll(1, "wrote \(path)\n")
                }
            } else {
                FileIO.writeAll(1, files.map { "# file: \($0.name)\n\($0.text)" }.joined(separator: "\n"))
            }
            return 0
        } catch {
            FileIO.writeAll(2, "Error: \(error)\n")
            return 1
        }
    }

    /// The unit files for the command (separate for the tests).
    package static func generateUnits(_ c: SystemdUnitsCommand) throws(ConfigError) -> [SystemdUnits.File] {
        if let e = c.run.envFile { try loadEnvFile(e) }
        let env = environment()
        guard let loaded = try loadConfig(c.run, environment: env), let path = loaded.path else {
            throw ConfigError("no config file (use --config FILE, or run it where ./Caddyfile is)")
        }
        let configPath = normalizedAbsolutePath(path)
        if configPath.contains(":") {
            throw ConfigError("\(configPath): a ':' in the config's path cannot be mounted with Volume=; move the Caddyfile")
        }
        let plan = try SystemdUnits.plan(loaded.config, name: c.name)
        var o = SystemdUnits.Options(configPath: configPath, binary: normalizedAbsolutePath(c.binary ?? executablePath()))
        o.name = c.name
        if let i = c.image { o.image = i }
        o.service = c.service
        o.ports = c.ports
        o.network = c.network
        o.exitIdle = c.exitIdle
        return try SystemdUnits.render(plan, o)
    }

    /// `path` made absolute against the working directory, with `.` and `..` resolved.
    static func normalizedAbsolutePath(_ path: String) -> String {
        var parts: [Substring] = []
        for p in absolutePath(path).split(separator: "/") where p != "." {
            if p == ".." {
                if !parts.isEmpty { parts.removeLast() }
            } else {
                parts.append(p)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// This executable (`/proc/self/exe`), or `berth` when it cannot be read.
    static func executablePath() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return "/usr/bin/berth" }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Caddyfile
import IOCore

extension Launcher {
    /// `berth fmt [--overwrite] [--diff] [FILE|-]`, as `caddy fmt`: prints the formatted
    /// Caddyfile (or a line diff), and exits 1 with Caddy's message when the input was not
    /// formatted (unless overwriting).
    package static func fmt(path: String?, overwrite: Bool, diff: Bool) -> Int32 {
        let file = path ?? "Caddyfile"
        if file == "-" {
            var input: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                input += buf[0..<n]
            }
            FileIO.writeAll(1, String(decoding: CaddyfileFormatter.format(input), as: UTF8.self))
            return 0
        }
        let input: [UInt8]
        do { input = try FileIO.readAll(file) } catch {
            FileIO.writeAll(2, "Error: reading input file: \(error)\n")
            return 1
        }
        let output = CaddyfileFormatter.format(input)
        if overwrite {
            do { try FileIO.writeAtomically(file, output, mode: 0o600) } catch {
                FileIO.writeAll(2, "Error: overwriting formatted file: \(error)\n")
                return 1
            }
            return 0
        }
        if diff {
            let a = String(decoding: input, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let b = String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var out = ""
            for (kind, line) in LineDiff.diff(a, b) {
                out += (kind == 0 ? "  " : kind < 0 ? "- " : "+ ") + line + "\n"
            }
            FileIO.writeAll(1, out)
        } else {
            FileIO.writeAll(1, String(decoding: output, as: UTF8.self))
        }
        if let line = CaddyfileFormatter.firstUnformattedLine(input) {
            FileIO.writeAll(2, "Error: \(file):\(line): Caddyfile input is not formatted; Tip: use '--overwrite' to update your Caddyfile in-place instead of previewing it. Consult '--help' for more options\n")
            return 1
        }
        return 0
    }
}

/// A longest-common-subsequence line diff (config-time only).
enum LineDiff {
    /// Pairs of (0 common, -1 left only, +1 right only, line).
    static func diff(_ a: [String], _ b: [String]) -> [(Int, String)] {
        let n = a.count, m = b.count
        var lcs = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        if n > 0 && m > 0 {
            for i in stride(from: n - 1, through: 0, by: -1) {
                for j in stride(from: m - 1, through: 0, by: -1) {
                    lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
                }
            }
        }
        var out: [(Int, String)] = []
        var i = 0, j = 0
        while i < n && j < m {
            if a[i] == b[j] { out.append((0, a[i])); i += 1; j += 1 }
            else if lcs[i + 1][j] >= lcs[i][j + 1] { out.append((-1, a[i])); i += 1 }
            else { out.append((1, b[j])); j += 1 }
        }
        while i < n { out.append((-1, a[i])); i += 1 }
        while j < m { out.append((1, b[j])); j += 1 }
        return out
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Config
import EventLoop
import IOCore

/// A blocking HTTP/1.1 client for the CLI's admin requests (`reload`, `stop`, `healthcheck`).
package enum AdminClient {
    package struct Reply {
        package var status: Int
        package var body: String
    }

    /// Parses `unix//path`, `unix/path`, `host:port`, `:port`, `fd/N`.
    package static func parse(_ address: String) throws(StartError) -> AdminConfig {
        if address.hasPrefix("unix/") {
            var p = String(address.dropFirst(5))
            if let bar = p.lastIndex(of: "|") { p = String(p[p.startIndex..<bar]) }
            return .unix(path: p, mode: 0o200)
        }
        if address.hasPrefix("fd/") {
            return .fd(Int(address.dropFirst(3)) ?? -1)
        }
        var host = "localhost"
        var portText = address
        if let c = address.lastIndex(of: ":") {
            host = String(address[address.startIndex..<c])
            portText = String(address[address.index(after: c)...])
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let port = Int(portText) else { throw StartError("invalid admin address \(address)") }
        return .tcp(host: host.isEmpty ? "localhost" : host, port: port)
    }

    /// Sends one request and reads the whole reply.
    package static func request(_ admin: AdminConfig, method: String, path: String, headers: [(String, String)] = [],
                                body: [UInt8] = [], timeoutSeconds: Int = 30) throws(StartError) -> Reply {
        let fd: Int32
        switch admin {
        case .off:
            throw StartError("the admin endpoint is disabled (admin off); reload with SIGHUP/SIGUSR1 instead")
        case .fd(let n):
            throw StartError("admin endpoint fd/\(n) is an inherited listening socket that another process cannot dial; Berth also reloads on SIGHUP/SIGUSR1 (e.g. systemctl reload, or kill -HUP)")
        case .unix(let path, _):
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let rc = SocketAddress.unix(path: path).withSockAddr { sa, len in connect(fd, sa, len) }
            if rc != 0 {
                let e = errno
                Glibc.close(fd)
                throw StartError("performing request: dial unix \(path): \(IOError.describe(e))")
            }
        case .tcp(let host, let port):
            let ip = host == "localhost" ? "127.0.0.1" : host
            guard let a = SocketAddress(ip: ip, port: port) else { throw StartError("invalid admin address \(host):\(port)") }
            fd = socket(a.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let rc = a.withSockAddr { sa, len in connect(fd, sa, len) }
            if rc != 0 {
                let e = errno
                Glibc.close(fd)
                throw StartError("performing request: dial tcp \(a): \(IOError.describe(e))")
            }
        }
        defer { Glibc.close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: berth\r\nConnection: close\r\n"
        if case .tcp(let h, let p) = admin { head += "Origin: http://\(h):\(p)\r\n" }
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        let all = Array(head.utf8) + body
        var off = 0
        while off < all.count {
            let n = all.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; throw StartError("performing request: write: \(IOError.describe(errno))") }
            off += n
        }
        var resp: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw StartError("performing request: read: \(IOError.describe(errno))") }
            if n == 0 { break }
            resp += buf[0..<n]
        }
        let text = String(decoding: resp, as: UTF8.self)
        guard text.hasPrefix("HTTP/1."), let sp = text.firstIndex(of: " ") else {
            throw StartError("performing request: malformed reply from the admin endpoint")
        }
        let status = Int(text[text.index(after: sp)...].prefix(3)) ?? 0
        var bodyText = ""
        if let sep = text.range(of: "\r\n\r\n") {
            bodyText = String(text[sep.upperBound...])
            if text[..<sep.lowerBound].lowercased().contains("transfer-encoding: chunked") {
                bodyText = dechunk(bodyText)
            }
        }
        return Reply(status: status, body: bodyText)
    }

    static func dechunk(_ s: String) -> String {
        var out = ""
        var rest = Substring(s)
        while let nl = rest.range(of: "\r\n") {
            let size = Int(rest[rest.startIndex..<nl.lowerBound].split(separator: ";").first ?? "", radix: 16) ?? 0
            if size == 0 { break }
            let start = nl.upperBound
            let end = rest.utf8.index(start, offsetBy: size, limitedBy: rest.endIndex) ?? rest.endIndex
            out += rest[start..<end]
            rest = rest[end...].dropFirst(2)
        }
        return out
    }
}

extension String {
    func range(of needle: String) -> Range<String.Index>? {
        guard !needle.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
            i = index(after: i)
        }
        return nil
    }
}

extension Substring {
    func range(of needle: String) -> Range<String.Index>? {
        guard !needle.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
            i = index(after: i)
        }
        return nil
    }
}

extension Launcher {
    /// The admin address for a CLI command: `--address`, else the config's `admin`, else
    /// Caddy's default `localhost:2019`.
    static func adminAddress(address: String?, options: RunOptions) throws -> AdminConfig {
        if let a = address { return try AdminClient.parse(a) }
        if options.configPath != nil || FileIO.isRegularFile("Caddyfile"), let l = try loadConfig(options, environment: environment()) {
            return l.config.admin
        }
        return .default
    }

    /// `berth reload`: reads the config locally — a Caddyfile, or Berth's JSON — (an error
    /// exits 1 and sends nothing), then POSTs the file to the admin endpoint's `/load` with
    /// its Content-Type.
    package static func reloadCommand(_ o: RunOptions, address: String?, force: Bool) -> Int32 {
        do {
            if let e = o.envFile { try loadEnvFile(e) }
            guard let loaded = try loadConfig(o, environment: environment()), let path = loaded.path else {
                throw StartError("no config file to load; either use --config flag or ensure Caddyfile exists in current directory")
            }
            let admin = try address.map { a throws in try AdminClient.parse(a) } ?? loaded.config.admin
            let body = try FileIO.readAll(path)
            var headers: [(String, String)] = [("Content-Type", loaded.format.contentType), ("Caddy-Config-Source-File", absolutePath(path)),
                                               ("Caddy-Config-Source-Adapter", loaded.format == .json ? "json" : "caddyfile")]
            if force { headers.append(("Cache-Control", "must-revalidate")) }
            let reply = try AdminClient.request(admin, method: "POST", path: "/load", headers: headers, body: body)
            if reply.status >= 400 {
                throw StartError("sending configuration to instance: berth responded with error: HTTP \(reply.status): \(reply.body)")
            }
            Log.info("", "config sent", [("address", .string(admin.caddyAddress)), ("status", .int(reply.status))])
            return 0
        } catch {
            FileIO.writeAll(2, "Error: \(error)\n")
            return 1
        }
    }

    /// `berth stop`: POST /stop.
    package static func stopCommand(_ o: RunOptions, address: String?) -> Int32 {
        do {
            let admin = try adminAddress(address: address, options: o)
            let reply = try AdminClient.request(admin, method: "POST", path: "/stop")
            if reply.status >= 400 { throw StartError("stopping: HTTP \(reply.status): \(reply.body)") }
            return 0
        } catch {
            FileIO.writeAll(2, "Error: \(error)\n")
            return 1
        }
    }

    /// `berth healthcheck`: GET /health; exit 0 when healthy (for HEALTHCHECK / Notify=healthy).
    package static func healthCommand(_ o: RunOptions, address: String?) -> Int32 {
        do {
            let admin = try adminAddress(address: address, options: o)
            let reply = try AdminClient.request(admin, method: "GET", path: "/health", timeoutSeconds: 5)
            FileIO.writeAll(1, reply.body)
            return reply.status == 200 ? 0 : 1
        } catch {
            FileIO.writeAll(2, "Error: \(error)\n")
            return 1
        }
    }

    static func absolutePath(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        var buf = [UInt8](repeating: 0, count: 4096)
        let ok = buf.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { getcwd($0, b.count) != nil }
        }
        guard ok else { return p }
        let end = buf.firstIndex(of: 0) ?? buf.count
        return String(decoding: buf[0..<end], as: UTF8.self) + "/" + p
    }
}

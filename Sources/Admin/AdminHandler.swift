import JSON
import Config
import HTTPCore
import IOCore

/// What the admin API asks of the running server. Implemented by the server's supervisor; all
/// calls happen on the control thread, where the admin endpoint is served.
package protocol AdminControl: AnyObject {
    /// Adapts and applies a new config. `force` reloads even when nothing changed.
    /// Returns nil on success or the error text.
    func load(body: [UInt8], contentType: String, sourceFile: String?, force: Bool) -> AdminLoadOutcome
    /// The running config as JSON.
    func currentConfig() -> JSONValue
    /// Starts a graceful stop (after the response is sent).
    func stop()
    /// A one-line health summary, and whether every listener serves.
    func health() -> (healthy: Bool, json: JSONValue)
    /// Caddy's `GET /reverse_proxy/upstreams`: every upstream address with its requests in
    /// flight and failure count.
    func upstreams() -> JSONValue
}

/// The result of `POST /load`.
package enum AdminLoadOutcome: Sendable, Equatable {
    case loaded
    case unchanged
    case failed(status: Int, message: String)
}

/// Caddy's admin API on Berth's own HTTP stack (caddy-behavior §13): `POST /load`,
/// `GET /config/[path]`, `POST /stop`, `GET /reverse_proxy/upstreams`, plus `GET /health` for
/// container health checks.
/// Errors are `{"error":"…"}` JSON like Caddy's.
package final class AdminHandler: Handler, @unchecked Sendable {
    private unowned let control: AdminControl
    /// Accepted `Origin` values (`http://host:port` for TCP endpoints; none for unix/fd, as Caddy).
    private let allowedOrigins: [String]
    /// Accepted `Host` values for TCP endpoints (empty: no Host check, unix/fd sockets).
    private let allowedHosts: [String]
    /// Largest accepted config body.
    package let maxBodyBytes: Int

    package init(control: AdminControl, allowedHosts: [String], allowedOrigins: [String], maxBodyBytes: Int = 16 << 20) {
        self.control = control
        self.allowedHosts = allowedHosts.map { $0.lowercased() }
        self.allowedOrigins = allowedOrigins.map { $0.lowercased() }
        self.maxBodyBytes = maxBodyBytes
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        if let refusal = checkOrigin(request) {
            AdminHandler.error(response, refusal.0, refusal.1)
            return .done
        }
        let path = request.pathString
        let method = request.method
        if path == "/load" {
            guard method == .POST else {
                AdminHandler.error(response, 405, "method not allowed")
                return .done
            }
            let reader = BodyCollector(limit: maxBodyBytes) { [unowned self] result in
                self.finishLoad(request, response, result)
            }
            if let src = request.bodySource {
                src.startReading(reader)
                return .pending
            }
            finishLoad(request, response, .success([]))
            return .done
        }
        if path == "/stop" {
            guard method == .POST else {
                AdminHandler.error(response, 405, "method not allowed")
                return .done
            }
            response.closeConnection = true
            response.sendEmpty()
            control.stop()
            return .done
        }
        if path == "/health" || path == "/health/" {
            guard method == .GET || method == .HEAD else {
                AdminHandler.error(response, 405, "method not allowed")
                return .done
            }
            let h = control.health()
            AdminHandler.json(response, h.healthy ? 200 : 503, h.json.serialized() + "\n")
            return .done
        }
        if path == "/reverse_proxy/upstreams" {
            guard method == .GET else {
                AdminHandler.error(response, 405, "method not allowed")
                return .done
            }
            AdminHandler.json(response, 200, control.upstreams().serialized() + "\n")
            return .done
        }
        if path == "/config" || path.hasPrefix("/config/") {
            guard method == .GET || method == .HEAD else {
                AdminHandler.error(response, 405, "changing the config through /config/ is not supported by Berth; POST a Caddyfile (text/caddyfile) or Berth's JSON (application/json) to /load")
                return .done
            }
            let segments = path.split(separator: "/", omittingEmptySubsequences: true).dropFirst().map(String.init)
            guard let v = AdminHandler.traverse(control.currentConfig(), segments) else {
                AdminHandler.error(response, 400, "invalid traversal path at: " + (["config"] + segments).joined(separator: "/"))
                return .done
            }
            AdminHandler.json(response, 200, v.serialized() + "\n")
            return .done
        }
        response.status = 404
        response.fields.append(.contentType, "text/plain; charset=utf-8")
        response.fields.append(name: "X-Content-Type-Options", value: "nosniff")
        response.send("404 page not found\n")
        return .done
    }

    private func finishLoad(_ request: HTTPRequest, _ response: HTTPResponse, _ result: Result<[UInt8], AdminBodyError>) {
        switch result {
        case .failure(let e):
            AdminHandler.error(response, e == .tooLarge ? 413 : 400, e == .tooLarge ? "request body too large" : "reading request body: \(e)")
            return
        case .success(let body):
            let ct = request.fields.value(.contentType) ?? ""
            let source = request.fields.value(named: "Caddy-Config-Source-File")
            let force = (request.fields.value(.cacheControl) ?? "").lowercased().contains("must-revalidate")
            switch control.load(body: body, contentType: ct, sourceFile: source, force: force) {
            case .loaded, .unchanged:
                response.sendEmpty()
            case .failed(let status, let message):
                AdminHandler.error(response, status, message)
            }
        }
    }

    /// Caddy's origin rules: any `Origin` must be in the allowed list (empty for unix/fd
    /// sockets, so any Origin is refused there); `Origin: null` and `Sec-Fetch-Mode: no-cors`
    /// are refused; TCP endpoints also check `Host`.
    private func checkOrigin(_ r: HTTPRequest) -> (Int, String)? {
        if !allowedHosts.isEmpty {
            let host = r.authorityRange.map { r.withLineBytes($0) { String(decoding: $0, as: UTF8.self) } }?.lowercased() ?? ""
            if !allowedHosts.contains(host) { return (403, "host not allowed: \(host)") }
        }
        if let mode = r.fields.value(named: "Sec-Fetch-Mode"), mode.lowercased() == "no-cors" {
            return (400, "client attempted to make request by disabling CORS ('no-cors')")
        }
        if let origin = r.fields.value(.origin) {
            if origin == "null" { return (400, "client is not allowed to access from origin 'null'") }
            if !allowedOrigins.contains(origin.lowercased()) {
                return (403, "client is not allowed to access from origin '\(origin)'")
            }
        }
        return nil
    }

    static func json(_ response: HTTPResponse, _ status: Int, _ body: String) {
        response.status = status
        response.fields.append(.contentType, "application/json")
        var b = body
        b.withUTF8 { response.send(body: UnsafeRawBufferPointer($0)) }
    }

    /// `{"error":"…"}` with a trailing newline, like Caddy.
    static func error(_ response: HTTPResponse, _ status: Int, _ message: String) {
        json(response, status, JSONValue.object([("error", .string(message))]).serialized() + "\n")
    }

    /// Follows `/config/a/b/0` into the JSON document.
    static func traverse(_ v: JSONValue, _ path: [String]) -> JSONValue? {
        var cur = v
        for seg in path {
            switch cur {
            case .object(let o):
                guard let next = o.first(where: { $0.0 == seg })?.1 else { return nil }
                cur = next
            case .array(let a):
                guard let i = Int(seg), i >= 0, i < a.count else { return nil }
                cur = a[i]
            default:
                return nil
            }
        }
        return cur
    }
}

/// Why reading an admin request body failed.
package enum AdminBodyError: Error, Equatable, Sendable {
    case tooLarge
    case body(RequestBodyError)
}

/// Collects a request body into memory (admin API only: configs are small).
final class BodyCollector: RequestBodyReader {
    private var bytes: [UInt8] = []
    private let limit: Int
    private var done = false
    private let completion: (Result<[UInt8], AdminBodyError>) -> Void

    init(limit: Int, completion: @escaping (Result<[UInt8], AdminBodyError>) -> Void) {
        self.limit = limit
        self.completion = completion
    }

    func requestBody(_ b: UnsafeRawBufferPointer) {
        guard !done else { return }
        if bytes.count + b.count > limit {
            done = true
            completion(.failure(.tooLarge))
            return
        }
        bytes.append(contentsOf: b)
    }

    func requestBodyFinished() {
        guard !done else { return }
        done = true
        completion(.success(bytes))
    }

    func requestBodyFailed(_ error: RequestBodyError) {
        guard !done else { return }
        done = true
        completion(.failure(.body(error)))
    }
}

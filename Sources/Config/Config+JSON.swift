/// Dumps the typed config as deterministic JSON shaped like Caddy's (`adapt`, `/config/`).
extension BerthConfig {
    package var json: JSONValue {
        var top: [(String, JSONValue)] = []
        top.append(("admin", adminJSON))
        var serverList: [(String, JSONValue)] = []
        for s in self.servers.sorted(by: { $0.name < $1.name }) { serverList.append((s.name, s.json)) }
        var http: [(String, JSONValue)] = []
        if gracePeriodMilliseconds != 10_000 { http.append(("grace_period", .int(gracePeriodMilliseconds * 1_000_000))) }
        http.append(("servers", .object(serverList)))
        top.append(("apps", .object([("http", .object(http))])))
        return .object(top)
    }

    var adminJSON: JSONValue {
        switch admin {
        case .off: return .object([("disabled", .bool(true))])
        case .tcp(let h, let p): return .object([("listen", .string("\(h):\(p)"))])
        case .unix(let path, let mode):
            let m = mode == 0o200 ? "" : "|0" + String(mode, radix: 8)
            return .object([("listen", .string("unix/" + path + m))])
        case .fd(let n): return .object([("listen", .string("fd/\(n)"))])
        }
    }
}

extension ServerConfig {
    var json: JSONValue {
        var o: [(String, JSONValue)] = []
        o.append(("listen", .array(listeners.map { .string($0.address.description) })))
        o.append(("listen_protocols", .array(listeners.map { .array($0.protocols.map { .string($0.rawValue) }) })))
        o.append(("routes", .array(routes.map(\.json))))
        if let l = logs {
            var lo: [(String, JSONValue)] = []
            if !l.logAll && !l.loggedHosts.isEmpty {
                lo.append(("logger_names", .object(l.loggedHosts.sorted().map { ($0, .array([.string("")])) })))
            }
            if !l.logAll && !l.skipHosts.isEmpty { lo.append(("skip_hosts", .array(l.skipHosts.sorted().map { .string($0) }))) }
            o.append(("logs", .object(lo)))
        }
        return .object(o)
    }
}

extension RouteConfig {
    var json: JSONValue {
        var o: [(String, JSONValue)] = []
        if !match.isEmpty { o.append(("match", .array(match.map { set in .object(set.map(\.json)) }))) }
        o.append(("handle", .array(handle.map(\.json))))
        if terminal { o.append(("terminal", .bool(true))) }
        return .object(o)
    }
}

extension MatcherConfig {
    var json: (String, JSONValue) {
        switch self {
        case .host(let h): return ("host", .array(h.map { .string($0) }))
        case .path(let p): return ("path", .array(p.map { .string($0) }))
        }
    }
}

extension HandlerConfig {
    var json: JSONValue {
        switch self {
        case .staticResponse(let status, let body, let headers, let close):
            var o: [(String, JSONValue)] = []
            if let b = body { o.append(("body", .string(b))) }
            if close { o.append(("close", .bool(true))) }
            o.append(("handler", .string("static_response")))
            if !headers.isEmpty {
                o.append(("headers", .object(headers.sorted { $0.key < $1.key }.map { ($0.key, .array($0.value.map { .string($0) })) })))
            }
            if let s = status { o.append(("status_code", .int(s))) }
            return .object(o)
        case .subroute(let routes):
            return .object([("handler", .string("subroute")), ("routes", .array(routes.map(\.json)))])
        }
    }
}

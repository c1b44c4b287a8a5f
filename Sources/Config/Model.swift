import Caddyfile

/// Where a config value came from, for errors (`Caddyfile:6`).
package struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    package var file: String
    package var line: Int
    /// For configs loaded from Berth's JSON: the value's path in the document
    /// (`apps.http.servers.srv0.listen[1]`), which stands in for the line.
    package var jsonPath: String? = nil
    package init(file: String, line: Int) {
        self.file = file
        self.line = line
    }
    package init(file: String, jsonPath: String) {
        self.file = file
        self.line = 0
        self.jsonPath = jsonPath
    }
    package var description: String {
        if let p = jsonPath { return "\(file): \(p)" }
        return "\(file):\(line)"
    }
}

/// An error in the configuration, ending with `, at FILE:LINE` like Caddy's.
package struct ConfigError: Error, CustomStringConvertible, Sendable {
    package var message: String
    package var location: SourceLocation?
    package init(_ message: String, at location: SourceLocation? = nil) {
        self.message = message
        self.location = location
    }
    /// Wraps a Caddyfile error, whose text already ends with its location.
    package init(_ error: CaddyfileError) {
        self.message = error.description
        self.location = nil
    }
    package var description: String {
        guard let l = location else { return message }
        return "\(message), at \(l)"
    }
}

/// HTTP protocol names as in Caddy's `protocols`.
package enum HTTPProtocolName: String, Sendable, Hashable, CaseIterable {
    case h1, h2, h2c, h3
}

/// A listener address from `bind`, `default_bind` or a site's port.
package enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// Inherited stream socket by number (`fd/N`).
    case fd(Int)
    /// Inherited datagram socket by number (`fdgram/N`).
    case fdgram(Int)
    /// Inherited stream socket(s) by LISTEN_FDNAMES name (`fdname/NAME[/K]`).
    case fdname(String, index: Int?)
    /// Inherited datagram socket(s) by name (`fdgramname/NAME[/K]`).
    case fdgramname(String, index: Int?)
    /// A TCP address Berth binds itself (host may be empty for all interfaces).
    case tcp(host: String, port: Int)
    /// A unix socket path Berth binds itself.
    case unix(path: String)

    package var isInherited: Bool {
        switch self {
        case .fd, .fdgram, .fdname, .fdgramname: return true
        case .tcp, .unix: return false
        }
    }

    package var isDatagram: Bool {
        switch self {
        case .fdgram, .fdgramname: return true
        default: return false
        }
    }

    /// Caddy's listener key text (`fd/3`, `0.0.0.0:80`, `[::1]:443`, `unix//p`).
    package var description: String {
        switch self {
        case .fd(let n): return "fd/\(n)"
        case .fdgram(let n): return "fdgram/\(n)"
        case .fdname(let s, let i): return "fdname/\(s)" + (i.map { "/\($0)" } ?? "")
        case .fdgramname(let s, let i): return "fdgramname/\(s)" + (i.map { "/\($0)" } ?? "")
        case .tcp(let h, let p):
            if h.contains(":") { return "[\(h)]:\(p)" }
            return "\(h):\(p)"
        case .unix(let p): return "unix/\(p)"
        }
    }
}

/// One listener of a server and the protocols it speaks.
package struct ListenerConfig: Sendable, Hashable {
    package var address: ListenAddress
    package var protocols: [HTTPProtocolName]
    package var location: SourceLocation?
    package init(address: ListenAddress, protocols: [HTTPProtocolName], location: SourceLocation?) {
        self.address = address
        self.protocols = protocols
        self.location = location
    }
}

/// One site address served on one listener, as the Caddyfile wrote it. The server grouping
/// forgets the site's port for inherited listeners (`bind fd/3` serves whatever socket fd 3
/// is); `berth systemd-units` needs it back to write the matching `ListenStream=` line.
package struct ListenerUse: Sendable, Hashable {
    /// How the listener was given.
    package enum Origin: String, Sendable, Hashable {
        /// The site's `bind` directive.
        case bind
        /// The `default_bind` global option.
        case defaultBind = "default_bind"
        /// No bind at all: the site's own address (Berth binds it).
        case siteAddress = "site address"
    }

    /// The listener: `fd/3`, `fdgram/5`, `fdname/web`, or a TCP address (its port is the site's).
    package var address: ListenAddress
    /// The site address as written (`http://example.com`).
    package var site: String
    /// The site's port: its explicit port, else `http_port` for `http://`, else `https_port`.
    package var port: Int
    /// True when the site is served over HTTPS on this listener.
    package var https: Bool
    package var origin: Origin
    /// The `bind` / `default_bind` line (the site's line when there is no bind).
    package var location: SourceLocation
    package init(address: ListenAddress, site: String, port: Int, https: Bool, origin: Origin, location: SourceLocation) {
        self.address = address
        self.site = site
        self.port = port
        self.https = https
        self.origin = origin
        self.location = location
    }
}

/// A parsed site address (`http://localhost`, `:8080`, `example.com:443/path`).
package struct SiteAddress: Sendable, Hashable, CustomStringConvertible {
    package var original: String
    package var scheme: String
    package var host: String
    package var port: String
    package var path: String
    package var description: String { original }
}

/// A handler as configured: `spec` for every handler module, `subroute` for nested routes.
/// New handlers add a `HandlerSpec` type in their own file; nothing central changes.
package enum HandlerConfig: Sendable {
    case spec(any HandlerSpec)
    /// A group of routes (a site's subroute, `route`, `handle`).
    case subroute([RouteConfig])
}

/// A route: matcher sets (OR of ANDs, Caddy's `match`), handlers, terminal flag, and the
/// mutually exclusive group it belongs to (Caddy's `group`: only the first matching route of
/// a group runs within one route list).
package struct RouteConfig: Sendable {
    package var match: [[any MatcherSpec]]
    package var handle: [HandlerConfig]
    package var terminal: Bool
    package var group: String?
    package init(match: [[any MatcherSpec]] = [], handle: [HandlerConfig], terminal: Bool = false, group: String? = nil) {
        self.match = match
        self.handle = handle
        self.terminal = terminal
        self.group = group
    }
}

/// One HTTP server: the listeners that share a set of sites.
package struct ServerConfig: Sendable {
    package var name: String
    package var listeners: [ListenerConfig]
    package var routes: [RouteConfig]
    /// Caddy's `errors.routes`: every site's `handle_errors`, host-matched like `routes`.
    package var errorRoutes: [RouteConfig] = []
    /// Access logging: nil = off; otherwise the hosts logged (empty list = everything) and
    /// the hosts skipped.
    package var logs: AccessLogConfig?
    /// TLS settings when the server's listeners serve HTTPS.
    package var tls: ServerTLSConfig? = nil
    /// Caddy's `named_routes` (`&(name)` blocks this server invokes), by name.
    package var namedRoutes: [(name: String, route: RouteConfig)] = []
    package init(name: String, listeners: [ListenerConfig], routes: [RouteConfig], logs: AccessLogConfig?,
                 errorRoutes: [RouteConfig] = []) {
        self.name = name
        self.listeners = listeners
        self.routes = routes
        self.logs = logs
        self.errorRoutes = errorRoutes
    }
}

/// Which requests a server logs (Caddy's `servers.X.logs`).
package struct AccessLogConfig: Sendable, Equatable {
    /// Host → logger names (`""` is `http.log.access`, `NAME` is `http.log.access.NAME`).
    package var loggerNames: [String: [String]] = [:]
    /// Hosts whose site has no `log`.
    package var skipHosts: [String] = []
    /// True when a catch-all site has `log`: everything is logged.
    package var logAll: Bool = false
    /// The logger for hosts not in `loggerNames` (a catch-all site's named log).
    package var defaultLoggerName: String? = nil
    /// A catch-all site without `log`: hosts not in `loggerNames` are not logged.
    package var skipUnmappedHosts = false
    package init() {}
    /// Hosts whose site has `log`.
    package var loggedHosts: [String] { loggerNames.keys.sorted() }
}

/// The admin endpoint setting (`admin` global option).
package enum AdminConfig: Sendable, Equatable {
    case off
    case tcp(host: String, port: Int)
    case unix(path: String, mode: UInt32)
    case fd(Int)

    /// Caddy's default: localhost:2019.
    package static let `default` = AdminConfig.tcp(host: "localhost", port: 2019)
}

/// Caddy's `servers { timeouts { … } max_header_size … }` global option (applied to every server).
package struct ServerOptions: Sendable, Equatable {
    package var readHeaderMilliseconds: Int?
    package var readBodyMilliseconds: Int?
    package var writeMilliseconds: Int?
    package var idleMilliseconds: Int?
    package var maxHeaderBytes: Int?
    /// Berth: the port advertised in `Alt-Svc: h3=":PORT"` (`servers { alt_svc_port N }`),
    /// for sockets published under another port (container port mapping). Caddy has no such
    /// option; by default the UDP socket's own port is used.
    package var altSvcPort: Int?
    /// Berth: always validate QUIC client addresses with a Retry (`servers { h3_retry }`);
    /// without it Retry is used only under load.
    package var h3Retry: Bool = false
    /// `protocols`: the protocols of listeners without their own `bind … { protocols }`.
    package var protocols: [HTTPProtocolName]? = nil
    /// `trusted_proxies static <ranges…>` (`private_ranges` expanded).
    package var trustedProxies: [String] = []
    /// `client_ip_headers` (Caddy's default: X-Forwarded-For).
    package var clientIPHeaders: [String] = []
    /// `trusted_proxies_strict`: right-most untrusted address instead of the left-most.
    package var trustedProxiesStrict = false
    package init() {}
}

/// The whole configuration Berth runs.
package struct BerthConfig: Sendable {
    /// `servers` global option.
    package var serverOptions = ServerOptions()
    package var admin: AdminConfig = .default
    package var servers: [ServerConfig] = []
    /// Grace period for shutdown and reload, in milliseconds (bounded by default; Caddy's is not).
    package var gracePeriodMilliseconds: Int = 10_000
    /// `shutdown_delay` in milliseconds.
    package var shutdownDelayMilliseconds: Int = 0
    /// `auto_https` value, when set.
    package var autoHTTPS: String? = nil
    /// Where the config came from (file path), for `hide` and error messages.
    package var sourceFile: String? = nil
    /// Caddy's `logging.logs`, sorted by name (empty: Berth's JSON lines on stderr).
    package var logs: [NamedLog] = []
    /// `storage file_system <root>`: the data directory (nil: `$XDG_DATA_HOME/berth`).
    package var storageRoot: String? = nil
    /// Every (site address, listener) pair, in Caddyfile order; recorded by the Caddyfile
    /// adapter only (empty for Berth's JSON, which keeps no site ports for `fd/N`).
    package var listenerUses: [ListenerUse] = []
    /// Warnings to log at load (e.g. "input is not formatted").
    package var warnings: [String] = []
    package init() {}
}

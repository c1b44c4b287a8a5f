import JSON
import ACME
import Config
import HTTPCore
import Handlers
import IOCore
import TLS

/// Which requests of a server get an access-log line (caddy-behavior §14).
package struct AccessLogPolicy: Sendable {
    /// Hosts with their own logger names (exact names before wildcards, like Caddy's lookup).
    let mapped: [(pattern: HostPattern, targets: [AccessLogTarget])]
    let skipped: [HostPattern]
    let skipUnmapped: Bool
    /// Hosts not mapped: `http.log.access` or the catch-all site's named logger.
    let fallback: [AccessLogTarget]
    /// The logs, for requests that name their loggers (`log_name`).
    let logging: LoggingRuntime

    static func targets(_ names: [String], _ logging: LoggingRuntime) -> [AccessLogTarget] {
        names.map { n in
            let logger = n.isEmpty ? "http.log.access" : "http.log.access." + n
            return AccessLogTarget(loggerName: AccessLogPolicy.escaped(logger),
                                   sinks: logging.sinks.filter { $0.config.allows(logger: logger) })
        }
    }

    package init(_ c: AccessLogConfig, logging: LoggingRuntime) {
        self.logging = logging
        func targets(_ names: [String]) -> [AccessLogTarget] { AccessLogPolicy.targets(names, logging) }
        let hosts = c.loggerNames.keys.sorted { a, b in (a.contains("*") ? 1 : 0, a) < (b.contains("*") ? 1 : 0, b) }
        mapped = hosts.map { (HostPattern($0), targets(c.loggerNames[$0]!)) }
        skipped = c.skipHosts.map(HostPattern.init)
        skipUnmapped = c.skipUnmappedHosts
        fallback = targets([c.defaultLoggerName ?? ""])
    }

    /// Where a request's entry goes, or nil when it is not logged (Caddy's shouldLogRequest
    /// and getLoggerHosts).
    package func targets(for r: HTTPRequest) -> [AccessLogTarget]? {
        let byHost = r.withHost { h -> [AccessLogTarget]? in
            for m in mapped where m.pattern.matches(h) { return m.targets }
            if skipped.contains(where: { $0.matches(h) }) { return nil }
            return skipUnmapped ? nil : fallback
        }
        // `log_name` (Caddy's wrapLogger): the request's own logger names instead of the
        // host's, once the host says the request is logged at all.
        if byHost != nil, let names = r.accessLoggerNames { return AccessLogPolicy.targets(names, logging) }
        return byHost
    }

    /// A logger name as JSON string content.
    static func escaped(_ s: String) -> [UInt8] {
        var q = ""
        JSONValue.quote(s, into: &q)
        return Array(q.utf8.dropFirst().dropLast())
    }
}

/// One server of a runtime: the handler tree and settings for a set of listeners.
package final class RuntimeServer: Sendable {
    package let name: String
    package let handler: ServerHandler
    package let accessLog: AccessLogPolicy?
    /// TLS contexts by listener protocol set (nil: plain HTTP server).
    package let tlsContexts: [[HTTPProtocolName]: TLSContext]?
    /// The server's certificates (swapped in place on renewal).
    package let certificates: CertificateSource?
    /// Name sets issued by the local CA (renewed by the supervisor).
    package let internalNames: [[String]]
    /// Certificates obtained by ACME for this server (`ACMERuntime` swaps them into
    /// `certificates` as they arrive and renew).
    package let acmeSubjects: [ManagedCertificate]
    /// `client_auth` policies for QUIC handshakes (nil: none).
    let quicClientAuth: HTTP3ClientAuth?
    package init(name: String, handler: ServerHandler, accessLog: AccessLogPolicy?,
                 tlsContexts: [[HTTPProtocolName]: TLSContext]? = nil, certificates: CertificateSource? = nil,
                 internalNames: [[String]] = [], acmeSubjects: [ManagedCertificate] = [],
                 clientAuthPolicies: [TLSClientAuthPolicy] = []) {
        self.acmeSubjects = acmeSubjects
        quicClientAuth = HTTP3ClientAuth(clientAuthPolicies)
        self.name = name
        self.handler = handler
        self.accessLog = accessLog
        self.tlsContexts = tlsContexts
        self.certificates = certificates
        self.internalNames = internalNames
    }
}

/// An immutable snapshot of everything a config produces at run time. A reload builds a new one
/// and swaps it in; connections keep the one they started with.
package final class ServerRuntime: Sendable {
    /// Servers by index (`ServerConfig` order).
    package let servers: [RuntimeServer]
    /// The config this runtime was built from.
    package let config: BerthConfig
    /// Value of the `Server` response header.
    package let serverHeader: [UInt8]
    /// The config's logs (process logs switch to them when the runtime is applied).
    package let logging: LoggingRuntime

    package init(servers: [RuntimeServer], config: BerthConfig, serverHeader: String = "Berth",
                 logging: LoggingRuntime = LoggingRuntime.stderrDefault) {
        self.servers = servers
        self.config = config
        self.serverHeader = Array(serverHeader.utf8)
        self.logging = logging
    }

    /// Builds every server's handler tree from `config`.
    package static func build(_ config: BerthConfig, environment: [String: String],
                              previousLogging: LoggingRuntime? = LoggingRuntime.current) throws(ConfigError) -> ServerRuntime {
        let logging = try LoggingRuntime.build(config.logs, previous: previousLogging)
        let previousRoot = DataDirectory.configuredRoot
        DataDirectory.configure(config.storageRoot)
        do {
            return try buildServers(config, environment: environment, logging: logging)
        } catch {
            DataDirectory.configure(previousRoot)
            throw error
        }
    }

    private static func buildServers(_ config: BerthConfig, environment: [String: String],
                                     logging: LoggingRuntime) throws(ConfigError) -> ServerRuntime {
        var servers: [RuntimeServer] = []
        for s in config.servers {
            let h = try RuntimeBuilder.buildServerHandler(s, context: BuildContext(environment: environment, sourceFile: config.sourceFile),
                                                          options: config.serverOptions)
            var contexts: [[HTTPProtocolName]: TLSContext]? = nil
            var source: CertificateSource? = nil
            var internalNames: [[String]] = []
            var acmeSubjects: [ManagedCertificate] = []
            var clientAuth: [TLSClientAuthPolicy] = []
            if let tls = s.tls {
                if s.listeners.contains(where: { $0.address.isDatagram }) {
                    for p in tls.clientAuth { clientAuth.append(try TLSRuntime.clientAuthPolicy(p)) }
                }
                let c = try TLSRuntime.certificates(for: tls)
                source = c.source
                internalNames = c.internalNames
                acmeSubjects = c.acme
                var ctxs: [[HTTPProtocolName]: TLSContext] = [:]
                for l in s.listeners where !l.address.isDatagram {
                    let ps = l.protocols.filter { $0 != .h3 }
                    if ctxs[ps] == nil { ctxs[ps] = try TLSRuntime.context(source: c.source, protocols: ps, tls: tls) }
                }
                contexts = ctxs
            }
            servers.append(RuntimeServer(name: s.name, handler: h, accessLog: s.logs.map { AccessLogPolicy($0, logging: logging) },
                                         tlsContexts: contexts, certificates: source, internalNames: internalNames,
                                         acmeSubjects: acmeSubjects, clientAuthPolicies: clientAuth))
        }
        return ServerRuntime(servers: servers, config: config, logging: logging)
    }
}

import ACME
import Config
import HTTPCore
import Handlers
import IOCore
import TLS

/// Which requests of a server get an access-log line (caddy-behavior §14).
package struct AccessLogPolicy: Sendable {
    let logAll: Bool
    let logged: [HostPattern]
    let skipped: [HostPattern]

    package init(_ c: AccessLogConfig) {
        logAll = c.logAll
        logged = c.loggedHosts.filter { !$0.isEmpty }.map(HostPattern.init)
        skipped = c.skipHosts.map(HostPattern.init)
    }

    /// True when a request for this host is logged.
    package func shouldLog(_ r: HTTPRequest) -> Bool {
        if logAll { return true }
        return r.withHost { h in
            if skipped.contains(where: { $0.matches(h) }) { return false }
            if logged.isEmpty { return true }
            // Unmatched hosts are logged too once any site has `log` (Caddy logs them as NOP).
            return true
        }
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
    package init(name: String, handler: ServerHandler, accessLog: AccessLogPolicy?,
                 tlsContexts: [[HTTPProtocolName]: TLSContext]? = nil, certificates: CertificateSource? = nil,
                 internalNames: [[String]] = [], acmeSubjects: [ManagedCertificate] = []) {
        self.acmeSubjects = acmeSubjects
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

    package init(servers: [RuntimeServer], config: BerthConfig, serverHeader: String = "Berth") {
        self.servers = servers
        self.config = config
        self.serverHeader = Array(serverHeader.utf8)
    }

    /// Builds every server's handler tree from `config`.
    package static func build(_ config: BerthConfig, environment: [String: String]) throws(ConfigError) -> ServerRuntime {
        var servers: [RuntimeServer] = []
        for s in config.servers {
            let h = try RuntimeBuilder.buildServerHandler(s, context: BuildContext(environment: environment, sourceFile: config.sourceFile))
            var contexts: [[HTTPProtocolName]: TLSContext]? = nil
            var source: CertificateSource? = nil
            var internalNames: [[String]] = []
            var acmeSubjects: [ManagedCertificate] = []
            if let tls = s.tls {
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
            servers.append(RuntimeServer(name: s.name, handler: h, accessLog: s.logs.map(AccessLogPolicy.init),
                                         tlsContexts: contexts, certificates: source, internalNames: internalNames,
                                         acmeSubjects: acmeSubjects))
        }
        return ServerRuntime(servers: servers, config: config)
    }
}

import Config

/// The page `berth run` serves when no Caddyfile is given or found.
package enum DefaultSite {
    package static let html = """
        <!doctype html>
        <html lang="en">
        <head><meta charset="utf-8"><title>Berth is running</title>
        <style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}
        code{background:#f2f2f2;padding:.1em .3em;border-radius:3px}</style></head>
        <body>
        <h1>Berth is running</h1>
        <p>This is Berth's built-in page: no Caddyfile was given, so Berth serves it on every socket it
        inherited from systemd (or on 127.0.0.1:8080).</p>
        <p>Serve your own site with <code>berth run --config /etc/caddy/Caddyfile</code>.</p>
        </body>
        </html>

        """

    /// A config serving the default page on `listeners`.
    package static func config(listeners: [ListenAddress]) -> BerthConfig {
        var c = BerthConfig()
        c.admin = .off
        let route = RouteConfig(handle: [.spec(StaticResponseSpec(status: 200, body: html,
                                                                  headers: ["Content-Type": ["text/html; charset=utf-8"]]))],
                                terminal: true)
        c.servers = [ServerConfig(name: "srv0",
                                  listeners: listeners.map { ListenerConfig(address: $0, protocols: [.h1], location: nil) },
                                  routes: [route], logs: nil)]
        return c
    }
}

// swift-tools-version: 6.1
// Berth: a native Swift HTTP server for systemd socket activation and Podman.
import PackageDescription

/// Release builds drop the dynamic exclusivity checks (they cost ~8% of a hello-world request in
/// swift_beginAccess); exclusivity is still enforced statically at compile time, and debug builds
/// (which run every test) keep the dynamic checks.
let fast: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Berth",
    products: [
        .executable(name: "berth", targets: ["berth"]),
    ],
    targets: [
        // C boundary: only what Swift cannot import.
        .target(name: "CLinux", path: "Sources/CLinux", linkerSettings: [.linkedLibrary("crypt")]),

        // System libraries (Debian -dev packages), each with a header of static-inline shims.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CNGHTTP2", path: "Sources/CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        // HTTP/3: ngtcp2 + its GnuTLS crypto glue (libngtcp2_crypto_gnutls.pc has no Requires:,
        // so HTTP3 also depends on CGnuTLS), nghttp3, and GnuTLS for QUIC handshakes only.
        .systemLibrary(name: "CNGTCP2", path: "Sources/CNGTCP2", pkgConfig: "libngtcp2", providers: [.apt(["libngtcp2-dev", "libngtcp2-crypto-gnutls-dev"])]),
        .systemLibrary(name: "CNGHTTP3", path: "Sources/CNGHTTP3", pkgConfig: "libnghttp3", providers: [.apt(["libnghttp3-dev"])]),
        .systemLibrary(name: "CGnuTLS", path: "Sources/CGnuTLS", pkgConfig: "gnutls", providers: [.apt(["libgnutls28-dev"])]),

        // Pure Swift foundations.
        .target(name: "IOCore", path: "Sources/IOCore", swiftSettings: fast),
        .target(name: "JSON", path: "Sources/JSON", swiftSettings: fast),
        .target(name: "EventLoop", dependencies: ["IOCore", "CLinux"], path: "Sources/EventLoop", swiftSettings: fast),
        .target(name: "SystemD", dependencies: ["IOCore", "CLinux"], path: "Sources/SystemD", swiftSettings: fast),
        .target(name: "HTTPCore", dependencies: ["IOCore"], path: "Sources/HTTPCore", swiftSettings: fast),
        .target(name: "HTTP1", dependencies: ["IOCore", "HTTPCore"], path: "Sources/HTTP1", swiftSettings: fast),
        .target(name: "TLS", dependencies: ["IOCore", "COpenSSL"], path: "Sources/TLS", swiftSettings: fast),
        .target(name: "Upstream", dependencies: ["IOCore", "CLinux", "EventLoop", "HTTPCore", "HTTP1", "JSON", "TLS"], path: "Sources/Upstream", swiftSettings: fast),
        .target(name: "HTTP2", dependencies: ["IOCore", "HTTPCore", "CNGHTTP2"], path: "Sources/HTTP2", swiftSettings: fast),
        .target(name: "HTTP3", dependencies: ["IOCore", "HTTPCore", "CNGTCP2", "CNGHTTP3", "CGnuTLS"], path: "Sources/HTTP3", swiftSettings: fast),
        .target(name: "Handlers", dependencies: ["IOCore", "HTTPCore", "EventLoop", "CZlib", "CZstd", "Upstream", "CLinux"], path: "Sources/Handlers", swiftSettings: fast),
        .target(name: "Caddyfile", path: "Sources/Caddyfile", swiftSettings: fast),
        .target(name: "ACME", dependencies: ["IOCore", "JSON", "TLS", "COpenSSL"], path: "Sources/ACME", swiftSettings: fast),
        .target(name: "Config", dependencies: ["IOCore", "JSON", "HTTPCore", "Handlers", "Caddyfile", "TLS", "Upstream"], path: "Sources/Config", swiftSettings: fast),
        .target(name: "Admin", dependencies: ["IOCore", "JSON", "HTTPCore", "Config"], path: "Sources/Admin", swiftSettings: fast),
        .target(
            name: "Server",
            dependencies: ["IOCore", "JSON", "CLinux", "CZlib", "EventLoop", "SystemD", "HTTPCore", "HTTP1", "HTTP2", "HTTP3", "TLS", "ACME", "Handlers", "Caddyfile", "Config", "Admin", "Upstream"],
            path: "Sources/Server", swiftSettings: fast),
        .executableTarget(
            name: "berth",
            dependencies: [
                "Server",
            ],
            path: "Sources/berth", swiftSettings: fast),

        .testTarget(name: "AdminTests", dependencies: ["Admin", "Config", "HTTPCore", "IOCore", "JSON"], path: "Tests/AdminTests"),
        .testTarget(name: "IOCoreTests", dependencies: ["IOCore"], path: "Tests/IOCoreTests"),
        .testTarget(name: "EventLoopTests", dependencies: ["EventLoop", "IOCore", "CLinux"], path: "Tests/EventLoopTests"),
        .testTarget(name: "SystemDTests", dependencies: ["SystemD", "IOCore"], path: "Tests/SystemDTests"),
        .testTarget(name: "HTTPCoreTests", dependencies: ["HTTPCore", "IOCore"], path: "Tests/HTTPCoreTests"),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1", "HTTPCore", "IOCore"], path: "Tests/HTTP1Tests"),
        .testTarget(name: "TLSTests", dependencies: ["TLS", "IOCore", "COpenSSL"], path: "Tests/TLSTests"),
        .testTarget(name: "ACMETests", dependencies: ["ACME", "JSON", "TLS", "IOCore", "COpenSSL"], path: "Tests/ACMETests"),
        .testTarget(name: "HTTP2Tests", dependencies: ["HTTP2", "HTTPCore", "IOCore", "CNGHTTP2"], path: "Tests/HTTP2Tests"),
        .testTarget(name: "HTTP3Tests", dependencies: ["HTTP3", "HTTPCore", "IOCore", "EventLoop", "CLinux"], path: "Tests/HTTP3Tests"),
        .testTarget(
            name: "UpstreamTests",
            dependencies: ["Upstream", "EventLoop", "HTTPCore", "HTTP1", "IOCore", "CLinux", "Handlers", "Config", "Caddyfile"],
            path: "Tests/UpstreamTests"),
        .testTarget(name: "HandlersTests", dependencies: ["Handlers", "HTTPCore", "IOCore"], path: "Tests/HandlersTests"),
        .testTarget(
            name: "CaddyfileTests", dependencies: ["Caddyfile"], path: "Tests/CaddyfileTests",
            exclude: ["diff_caddy_fmt.sh"], resources: [.copy("Golden")]),
        .testTarget(
            name: "ConfigTests", dependencies: ["Config", "Caddyfile", "Handlers", "HTTPCore", "JSON"],
            path: "Tests/ConfigTests", exclude: ["Golden"]),
        .testTarget(
            name: "ServerTests",
            dependencies: ["Server", "EventLoop", "HTTP1", "HTTPCore", "Handlers", "Config", "IOCore", "SystemD", "JSON"],
            path: "Tests/ServerTests"),
    ],
    swiftLanguageModes: [.v6]
)

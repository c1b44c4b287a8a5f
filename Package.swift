// swift-tools-version: 6.1
// Berth: a native Swift HTTP server for systemd socket activation and Podman.
import PackageDescription

let package = Package(
    name: "Berth",
    products: [
        .executable(name: "berth", targets: ["berth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C boundary: only what Swift cannot import.
        .target(name: "CLinux", path: "Sources/CLinux"),

        // Pure Swift foundations.
        .target(name: "IOCore", path: "Sources/IOCore"),
        .target(name: "EventLoop", dependencies: ["IOCore", "CLinux"], path: "Sources/EventLoop"),
        .target(name: "SystemD", dependencies: ["IOCore", "CLinux"], path: "Sources/SystemD"),
        .target(name: "HTTPCore", dependencies: ["IOCore"], path: "Sources/HTTPCore"),
        .target(name: "HTTP1", dependencies: ["IOCore", "HTTPCore"], path: "Sources/HTTP1"),
        .target(name: "Handlers", dependencies: ["IOCore", "HTTPCore"], path: "Sources/Handlers"),
        .target(name: "Caddyfile", path: "Sources/Caddyfile"),
        .target(name: "Config", dependencies: ["IOCore", "HTTPCore", "Handlers", "Caddyfile"], path: "Sources/Config"),
        .target(
            name: "Server",
            dependencies: ["IOCore", "CLinux", "EventLoop", "SystemD", "HTTPCore", "HTTP1", "Handlers", "Config"],
            path: "Sources/Server"),
        .executableTarget(
            name: "berth",
            dependencies: [
                "IOCore", "Server", "Config", "Caddyfile", "SystemD",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/berth"),

        .testTarget(name: "IOCoreTests", dependencies: ["IOCore"], path: "Tests/IOCoreTests"),
        .testTarget(name: "EventLoopTests", dependencies: ["EventLoop", "IOCore", "CLinux"], path: "Tests/EventLoopTests"),
        .testTarget(name: "SystemDTests", dependencies: ["SystemD", "IOCore"], path: "Tests/SystemDTests"),
        .testTarget(name: "HTTPCoreTests", dependencies: ["HTTPCore", "IOCore"], path: "Tests/HTTPCoreTests"),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1", "HTTPCore", "IOCore"], path: "Tests/HTTP1Tests"),
        .testTarget(name: "HandlersTests", dependencies: ["Handlers", "HTTPCore", "IOCore"], path: "Tests/HandlersTests"),
        .testTarget(
            name: "CaddyfileTests", dependencies: ["Caddyfile"], path: "Tests/CaddyfileTests",
            resources: [.copy("Golden")]),
        .testTarget(
            name: "ConfigTests", dependencies: ["Config", "Caddyfile", "Handlers", "HTTPCore"],
            path: "Tests/ConfigTests"),
        .testTarget(
            name: "ServerTests",
            dependencies: ["Server", "EventLoop", "HTTP1", "HTTPCore", "Handlers", "Config", "IOCore", "SystemD"],
            path: "Tests/ServerTests"),
    ],
    swiftLanguageModes: [.v6]
)

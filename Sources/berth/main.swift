import ArgumentParser
import Config
import IOCore
import Server

#if canImport(Glibc)
import Glibc
#endif

/// The version string printed by `berth version`.
let berthVersion = "v0.1.0"

@main
struct Berth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "A fast HTTP server for systemd socket activation and Podman, configured by Caddyfile.",
        version: berthVersion,
        subcommands: [Run.self, Validate.self, Adapt.self, Fmt.self, Reload.self, Stop.self, Healthcheck.self, ACMECommand.self, Version.self],
        defaultSubcommand: nil)
}

/// Options shared by commands that read a config.
struct ConfigOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "Configuration file: a Caddyfile, or Berth's JSON as printed by `berth adapt` (*.json).")
    var config: String?

    @Option(name: [.customShort("a"), .long], help: "Config adapter: 'caddyfile' or 'json' (Berth's own JSON; default: json for *.json files, else caddyfile).")
    var adapter: String?

    @Option(name: .long, help: "Environment file to load before reading the config (KEY=VALUE lines).")
    var envfile: String?
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Starts Berth and blocks until stopped (SIGTERM/SIGINT).")

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Number of event-loop threads (default: one per CPU; env BERTH_LOOPS).")
    var loops: Int?

    @Flag(name: .long, help: "Accepted for Caddy compatibility; ignored (Berth keeps no autosave).")
    var resume = false

    @Flag(name: .long, help: "Accepted for Caddy compatibility; Berth reloads on SIGHUP/SIGUSR1 instead.")
    var watch = false

    @Option(name: .long, help: "Write the process id to this file.")
    var pidfile: String?

    func run() throws {
        let code = Launcher.run(RunOptions(configPath: options.config, adapter: options.adapter,
                                           envFile: options.envfile, loops: loops, pidFile: pidfile))
        throw ExitCode(code)
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Loads the config and builds the whole runtime without serving.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let code = Launcher.validate(RunOptions(configPath: options.config, adapter: options.adapter, envFile: options.envfile))
        throw ExitCode(code)
    }
}

struct Adapt: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prints the config as Berth's JSON.")

    @OptionGroup var options: ConfigOptions

    @Flag(name: .long, help: "Indent the JSON.")
    var pretty = false

    @Flag(name: .long, help: "Also validate the config.")
    var validate = false

    func run() throws {
        let code = Launcher.adapt(RunOptions(configPath: options.config, adapter: options.adapter, envFile: options.envfile),
                                  pretty: pretty, validate: validate)
        throw ExitCode(code)
    }
}

struct Fmt: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Formats a Caddyfile exactly like `caddy fmt`.")

    @Flag(name: [.customShort("w"), .long], help: "Overwrite the file in place.")
    var overwrite = false

    @Flag(name: .long, help: "Print a line diff instead of the formatted file.")
    var diff = false

    @Option(name: [.customShort("c"), .long], help: "The Caddyfile (same as the positional argument).")
    var config: String?

    @Argument(help: "The Caddyfile to format, or - for standard input (default: ./Caddyfile).")
    var file: String?

    func run() throws {
        throw ExitCode(Launcher.fmt(path: file ?? config, overwrite: overwrite, diff: diff))
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reads the config (Caddyfile or Berth's JSON) locally and sends it to the running server's admin endpoint.")

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Admin endpoint (unix//path, host:port); default: the config's admin option.")
    var address: String?

    @Flag(name: .long, help: "Reload even if the config is unchanged.")
    var force = false

    func run() throws {
        throw ExitCode(Launcher.reloadCommand(RunOptions(configPath: options.config, adapter: options.adapter, envFile: options.envfile),
                                              address: address, force: force))
    }
}

struct Stop: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Asks the running server to stop gracefully (POST /stop).")

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Admin endpoint (unix//path, host:port).")
    var address: String?

    func run() throws {
        throw ExitCode(Launcher.stopCommand(RunOptions(configPath: options.config, adapter: options.adapter), address: address))
    }
}

struct Healthcheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exits 0 when the running server is healthy (GET /health on the admin endpoint); needs no curl.")

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Admin endpoint (unix//path, host:port).")
    var address: String?

    func run() throws {
        throw ExitCode(Launcher.healthCommand(RunOptions(configPath: options.config, adapter: options.adapter), address: address))
    }
}

/// `berth acme …`: ACME certificate maintenance (see Launcher+ACME.swift).
struct ACMECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acme", abstract: "Manages the certificates Berth obtains with ACME.", subcommands: [Revoke.self])

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revokes a stored ACME certificate; the running server replaces it at its next check.")

        @OptionGroup var options: ConfigOptions

        @Option(name: .long, help: "RFC 5280 CRLReason code (1 keyCompromise, 4 superseded, 5 cessationOfOperation).")
        var reason: Int?

        @Argument(help: "The site name whose certificate to revoke.")
        var name: String

        func run() throws {
            throw ExitCode(Launcher.acmeRevoke(RunOptions(configPath: options.config, adapter: options.adapter,
                                                          envFile: options.envfile), name: name, reason: reason))
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prints the version.")
    func run() throws {
        print("\(berthVersion) (Berth; Caddyfile-compatible)")
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The `caddy`-compatible command line (`berth run --config F`, `validate`, `adapt`, `fmt`,
/// `reload`, `stop`, `healthcheck`, `acme revoke`, `version`) and Berth's `systemd-units`, parsed by hand: a library
/// for a dozen options would pull Foundation into the static binary (size, resident memory
/// and start-up time every socket-activated start pays for).
///
/// Options as Caddy's (cobra) and GNU's: `--name value`, `--name=value`, `-c value`, `-cvalue`,
/// boolean flags `--force` / `-w`, `--` ends the options. Usage errors print one line naming the
/// problem and the command's usage to stderr and exit 1 (Caddy's status for bad flags); `-h`,
/// `--help` and `help [command]` print the usage to stdout and exit 0.
package enum CLI {
    /// The version string printed by `berth version`.
    package static let version = "v0.1.0"

    /// One option of a command.
    struct Option: Sendable {
        let long: String
        let short: Character?
        /// The value's name in the usage text; nil for a boolean flag.
        let value: String?
        let help: String
    }

    /// A command: its options, positional arguments and what it does with them.
    struct Command: Sendable {
        let path: [String]
        let abstract: String
        let options: [Option]
        /// Positional arguments (name, help, required).
        let arguments: [(name: String, help: String, required: Bool)]
        let run: @Sendable (Parsed) throws(CLIError) -> Int32
    }

    /// What the command line said.
    struct Parsed: Sendable {
        var values: [String: String] = [:]
        var flags: Set<String> = []
        var arguments: [String] = []

        func string(_ long: String) -> String? { values[long] }
        func flag(_ long: String) -> Bool { flags.contains(long) }
        func int(_ long: String) throws(CLIError) -> Int? {
            guard let v = values[long] else { return nil }
            guard let n = Int(v) else { throw CLIError("invalid value '\(v)' for --\(long): not an integer") }
            return n
        }
    }

    /// A usage error (the message, without "Error: ").
    package struct CLIError: Error, Equatable {
        package let message: String
        init(_ message: String) { self.message = message }
    }

    static let configOptions: [Option] = [
        Option(long: "config", short: "c", value: "file",
               help: "Configuration file: a Caddyfile, or Berth's JSON as printed by `berth adapt` (*.json)."),
        Option(long: "adapter", short: "a", value: "name",
               help: "Config adapter: 'caddyfile' or 'json' (Berth's own JSON; default: json for *.json files, else caddyfile)."),
        Option(long: "envfile", short: nil, value: "file",
               help: "Environment file to load before reading the config (KEY=VALUE lines)."),
    ]

    static func runOptions(_ p: Parsed, loops: Int? = nil, pidFile: String? = nil) -> RunOptions {
        RunOptions(configPath: p.string("config"), adapter: p.string("adapter"), envFile: p.string("envfile"),
                   loops: loops, pidFile: pidFile)
    }

    static let commands: [Command] = [
        Command(path: ["run"], abstract: "Starts Berth and blocks until stopped (SIGTERM/SIGINT).",
                options: configOptions + [
                    Option(long: "loops", short: nil, value: "n",
                           help: "Number of event-loop threads (default: one per CPU; env BERTH_LOOPS)."),
                    Option(long: "resume", short: nil, value: nil,
                           help: "Accepted for Caddy compatibility; ignored (Berth keeps no autosave)."),
                    Option(long: "watch", short: nil, value: nil,
                           help: "Accepted for Caddy compatibility; Berth reloads on SIGHUP/SIGUSR1 instead."),
                    Option(long: "pidfile", short: nil, value: "file", help: "Write the process id to this file."),
                    Option(long: "exit-idle", short: nil, value: "duration",
                           help: "Exit after this long without connections when every listener is inherited: socket activation starts the next instance on demand (env BERTH_EXIT_IDLE)."),
                ], arguments: [],
                run: { p throws(CLIError) in
                    var o = runOptions(p, loops: try p.int("loops"), pidFile: p.string("pidfile"))
                    o.exitIdle = p.string("exit-idle")
                    return Launcher.run(o)
                }),
        Command(path: ["validate"], abstract: "Loads the config and builds the whole runtime without serving.",
                options: configOptions, arguments: [], run: { p in Launcher.validate(runOptions(p)) }),
        Command(path: ["adapt"], abstract: "Prints the config as Berth's JSON.",
                options: configOptions + [
                    Option(long: "pretty", short: nil, value: nil, help: "Indent the JSON."),
                    Option(long: "validate", short: nil, value: nil, help: "Also validate the config."),
                ], arguments: [],
                run: { p in Launcher.adapt(runOptions(p), pretty: p.flag("pretty"), validate: p.flag("validate")) }),
        Command(path: ["fmt"], abstract: "Formats a Caddyfile exactly like `caddy fmt`.",
                options: [
                    Option(long: "overwrite", short: "w", value: nil, help: "Overwrite the file in place."),
                    Option(long: "diff", short: nil, value: nil, help: "Print a line diff instead of the formatted file."),
                    Option(long: "config", short: "c", value: "file", help: "The Caddyfile (same as the positional argument)."),
                ], arguments: [("file", "The Caddyfile to format, or - for standard input (default: ./Caddyfile).", false)],
                run: { p in
                    Launcher.fmt(path: p.arguments.first ?? p.string("config"), overwrite: p.flag("overwrite"),
                                 diff: p.flag("diff"))
                }),
        Command(path: ["reload"],
                abstract: "Reads the config (Caddyfile or Berth's JSON) locally and sends it to the running server's admin endpoint.",
                options: configOptions + [
                    Option(long: "address", short: nil, value: "addr",
                           help: "Admin endpoint (unix//path, host:port); default: the config's admin option."),
                    Option(long: "force", short: nil, value: nil, help: "Reload even if the config is unchanged."),
                ], arguments: [],
                run: { p in Launcher.reloadCommand(runOptions(p), address: p.string("address"), force: p.flag("force")) }),
        Command(path: ["stop"], abstract: "Asks the running server to stop gracefully (POST /stop).",
                options: configOptions + [
                    Option(long: "address", short: nil, value: "addr", help: "Admin endpoint (unix//path, host:port)."),
                ], arguments: [],
                run: { p in Launcher.stopCommand(runOptions(p), address: p.string("address")) }),
        Command(path: ["healthcheck"],
                abstract: "Exits 0 when the running server is healthy (GET /health on the admin endpoint); needs no curl.",
                options: configOptions + [
                    Option(long: "address", short: nil, value: "addr", help: "Admin endpoint (unix//path, host:port)."),
                ], arguments: [],
                run: { p in Launcher.healthCommand(runOptions(p), address: p.string("address")) }),
        Command(path: ["hash-password"],
                abstract: "Prints a bcrypt hash of a password for basic_auth (as `caddy hash-password`).",
                options: [
                    Option(long: "plaintext", short: "p", value: "password",
                           help: "The password to hash; without it, one line is read from standard input."),
                    Option(long: "algorithm", short: "a", value: "name", help: "bcrypt (the only one in this build)."),
                    Option(long: "bcrypt-cost", short: nil, value: "n", help: "bcrypt cost, 4-31 (default 14, as Caddy)."),
                ], arguments: [],
                run: { p throws(CLIError) in
                    try Launcher.hashPassword(plaintext: p.string("plaintext"), algorithm: p.string("algorithm"),
                                              cost: try p.int("bcrypt-cost"))
                }),
        Command(path: ["acme", "revoke"],
                abstract: "Revokes a stored ACME certificate; the running server replaces it at its next check.",
                options: configOptions + [
                    Option(long: "reason", short: nil, value: "code",
                           help: "RFC 5280 CRLReason code (1 keyCompromise, 4 superseded, 5 cessationOfOperation)."),
                ], arguments: [("name", "The site name whose certificate to revoke.", true)],
                run: { p throws(CLIError) in
                    Launcher.acmeRevoke(runOptions(p), name: p.arguments[0], reason: try p.int("reason"))
                }),
        Command(path: ["systemd-units"],
                abstract: "Writes the .socket unit(s) and quadlet (.container) or .service matching the config's inherited sockets.",
                options: configOptions + [
                    Option(long: "name", short: "n", value: "name",
                           help: "Base name of the units and the container (default: caddy → caddy.socket, caddy.container)."),
                    Option(long: "image", short: nil, value: "image", help: "Container image (default: localhost/berth:latest)."),
                    Option(long: "service", short: nil, value: nil,
                           help: "Write a .service running this Berth binary on the host instead of a Podman quadlet."),
                    Option(long: "binary", short: nil, value: "path",
                           help: "The Berth binary for --service (default: this one)."),
                    Option(long: "port", short: "p", value: "old=new[,…]",
                           help: "Listen on port NEW where the Caddyfile's sites say OLD (e.g. 80=8080,443=8443)."),
                    Option(long: "network", short: nil, value: "value",
                           help: "Network= of the container (default: none when nothing needs a network, else unset)."),
                    Option(long: "exit-idle", short: nil, value: "duration",
                           help: "Add Environment=BERTH_EXIT_IDLE=DURATION (stop when idle; socket activation restarts it)."),
                    Option(long: "out", short: "o", value: "dir",
                           help: "Write the files into this directory instead of printing them."),
                ], arguments: [],
                run: { p throws(CLIError) in
                    var ports: [Int: Int] = [:]
                    if let spec = p.string("port") {
                        for item in spec.split(separator: ",") {
                            let parts = item.split(separator: "=", omittingEmptySubsequences: false)
                            guard parts.count == 2, let old = Int(parts[0]), let new = Int(parts[1]) else {
                                throw CLIError("invalid value '\(item)' for --port: expected OLD=NEW, e.g. 80=8080")
                            }
                            ports[old] = new
                        }
                    }
                    var o = SystemdUnitsCommand(run: runOptions(p))
                    o.name = p.string("name") ?? "caddy"
                    o.image = p.string("image")
                    o.service = p.flag("service")
                    o.binary = p.string("binary")
                    o.ports = ports
                    o.network = p.string("network")
                    o.exitIdle = p.string("exit-idle")
                    o.outDir = p.string("out")
                    return Launcher.systemdUnits(o)
                }),
        Command(path: ["version"], abstract: "Prints the version.", options: [], arguments: [],
                run: { _ in
                    print("\(version) (Berth; Caddyfile-compatible)")
                    return 0
                }),
    ]

    static let abstract = "A fast HTTP server for systemd socket activation and Podman, configured by Caddyfile."

    /// Runs the command line `args` (without the program name); the process exit status.
    package static func main(_ args: [String]) -> Int32 {
        switch resolve(args) {
        case .help(let text):
            print(text, terminator: "")
            return 0
        case .version:
            print(version)
            return 0
        case .failure(let e, let usage):
            printError("Error: \(e.message)\n" + (usage.isEmpty ? "" : "\n" + usage))
            return 1
        case .command(let c, let p):
            do {
                return try c.run(p)
            } catch {
                printError("Error: \(error.message)\n\n" + usage(c))
                return 1
            }
        }
    }

    enum Resolution {
        case command(Command, Parsed)
        case help(String)
        case version
        case failure(CLIError, usage: String)
    }

    /// Finds the command and parses its options (separate from `main` for the tests).
    static func resolve(_ args: [String]) -> Resolution {
        guard let first = args.first else { return .help(topUsage()) }
        switch first {
        case "-h", "--help": return .help(topUsage())
        case "--version", "-v": return .version
        case "help":
            let rest = Array(args.dropFirst())
            if rest.isEmpty { return .help(topUsage()) }
            if let (c, _) = find(rest) { return .help(usage(c)) }
            return .failure(CLIError("unknown command \"\(rest.joined(separator: " "))\" for \"berth\""), usage: topUsage())
        default:
            break
        }
        guard let (c, used) = find(args) else {
            if args.first == "acme" {
                return .failure(CLIError("\"berth acme\" needs a subcommand: revoke"), usage: topUsage())
            }
            return .failure(CLIError("unknown command \"\(first)\" for \"berth\""), usage: topUsage())
        }
        let rest = Array(args.dropFirst(used))
        if rest.prefix(while: { $0 != "--" }).contains(where: { $0 == "-h" || $0 == "--help" }) {
            return .help(usage(c))
        }
        do {
            return .command(c, try parse(rest, for: c))
        } catch {
            return .failure(error, usage: usage(c))
        }
    }

    /// The command named by the longest matching prefix of `args`, and how many words it took.
    static func find(_ args: [String]) -> (Command, Int)? {
        var best: (Command, Int)? = nil
        for c in commands where args.count >= c.path.count && Array(args.prefix(c.path.count)) == c.path {
            if best == nil || c.path.count > best!.1 { best = (c, c.path.count) }
        }
        return best
    }

    static func parse(_ args: [String], for c: Command) throws(CLIError) -> Parsed {
        var p = Parsed()
        var i = 0
        var optionsEnded = false
        func option(long name: String) throws(CLIError) -> Option {
            guard let o = c.options.first(where: { $0.long == name }) else {
                throw CLIError("unknown flag: --\(name)")
            }
            return o
        }
        func option(short ch: Character) throws(CLIError) -> Option {
            guard let o = c.options.first(where: { $0.short == ch }) else { throw CLIError("unknown shorthand flag: '\(ch)' in -\(ch)") }
            return o
        }
        func set(_ o: Option, inline: String?) throws(CLIError) {
            if o.value == nil {
                if let inline {
                    switch inline {
                    case "true", "1": p.flags.insert(o.long)
                    case "false", "0": p.flags.remove(o.long)
                    default: throw CLIError("invalid value '\(inline)' for --\(o.long): expected true or false")
                    }
                } else {
                    p.flags.insert(o.long)
                }
                return
            }
            if let inline {
                p.values[o.long] = inline
                return
            }
            i += 1
            guard i < args.count else { throw CLIError("flag needs an argument: --\(o.long)") }
            p.values[o.long] = args[i]
        }
        while i < args.count {
            let a = args[i]
            if optionsEnded || a == "-" || !a.hasPrefix("-") {
                p.arguments.append(a)
            } else if a == "--" {
                optionsEnded = true
            } else if a.hasPrefix("--") {
                let body = a.dropFirst(2)
                if let eq = body.firstIndex(of: "=") {
                    try set(try option(long: String(body[..<eq])), inline: String(body[body.index(after: eq)...]))
                } else {
                    try set(try option(long: String(body)), inline: nil)
                }
            } else {
                // -c value, -cvalue, -w
                let chars = Array(a.dropFirst())
                let o = try option(short: chars[0])
                if o.value != nil && chars.count > 1 {
                    try set(o, inline: String(chars[1...]))
                } else if chars.count > 1 {
                    throw CLIError("unknown shorthand flag: '\(chars[1])' in \(a)")
                } else {
                    try set(o, inline: nil)
                }
            }
            i += 1
        }
        let allowed = c.arguments.count
        if p.arguments.count > allowed {
            throw CLIError("unexpected argument '\(p.arguments[allowed])'")
        }
        for (k, arg) in c.arguments.enumerated() where arg.required && p.arguments.count <= k {
            throw CLIError("missing argument <\(arg.name)>")
        }
        return p
    }

    static func topUsage() -> String {
        var s = "\(abstract)\n\nUsage: berth <command> [flags]\n\nCommands:\n"
        for c in commands {
            let name = c.path.joined(separator: " ")
            s += "  " + name.padding(toLength: 14, withPad: " ", startingAt: 0) + c.abstract + "\n"
        }
        s += "\nFlags:\n  -h, --help      Show help (also: berth help <command>)\n  -v, --version   Print the version\n"
        return s
    }

    static func usage(_ c: Command) -> String {
        var line = "Usage: berth \(c.path.joined(separator: " "))"
        if !c.options.isEmpty { line += " [flags]" }
        for a in c.arguments { line += a.required ? " <\(a.name)>" : " [<\(a.name)>]" }
        var s = "\(c.abstract)\n\n\(line)\n"
        if !c.arguments.isEmpty {
            s += "\nArguments:\n"
            for a in c.arguments { s += "  " + "<\(a.name)>".padding(toLength: 24, withPad: " ", startingAt: 0) + a.help + "\n" }
        }
        s += "\nFlags:\n"
        for o in c.options + [Option(long: "help", short: "h", value: nil, help: "Show help for this command.")] {
            var left = o.short.map { "-\($0), " } ?? "    "
            left += "--\(o.long)"
            if let v = o.value { left += " <\(v)>" }
            s += "  " + left.padding(toLength: 24, withPad: " ", startingAt: 0) + o.help + "\n"
        }
        return s
    }

    static func printError(_ s: String) {
        var text = s
        if !text.hasSuffix("\n") { text += "\n" }
        var bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + off, $0.count - off) }
            if n <= 0 { break }
            off += n
        }
    }
}

extension String {
    /// Pads with `pad` to `length` characters (never truncates; at least one space after).
    fileprivate func padding(toLength length: Int, withPad pad: Character, startingAt _: Int) -> String {
        let n = count
        return n >= length ? self + " " : self + String(repeating: pad, count: length - n)
    }
}

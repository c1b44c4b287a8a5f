import Testing
@testable import Server

/// The hand-written `caddy`-compatible command line.
@Suite struct CLITests {
    func parsed(_ args: [String]) -> (path: [String], parsed: CLI.Parsed)? {
        if case .command(let c, let p) = CLI.resolve(args) { return (c.path, p) }
        return nil
    }

    func failure(_ args: [String]) -> String? {
        if case .failure(let e, _) = CLI.resolve(args) { return e.message }
        return nil
    }

    @Test func optionForms() throws {
        for args in [["run", "--config", "/c"], ["run", "--config=/c"], ["run", "-c", "/c"], ["run", "-c/c"]] {
            let r = try #require(parsed(args), "\(args)")
            #expect(r.path == ["run"])
            #expect(r.parsed.string("config") == "/c", "\(args)")
        }
        let r = try #require(parsed(["run", "--adapter", "caddyfile", "--loops", "3", "--watch", "--pidfile", "/p"]))
        #expect(r.parsed.string("adapter") == "caddyfile")
        #expect(try r.parsed.int("loops") == 3)
        #expect(r.parsed.flag("watch") && !r.parsed.flag("resume"))
        #expect(r.parsed.string("pidfile") == "/p")
        #expect(parsed(["run", "--exit-idle", "10m"])?.parsed.string("exit-idle") == "10m")
        // Boolean flags with explicit values, as cobra accepts them.
        #expect(parsed(["reload", "--force=true"])?.parsed.flag("force") == true)
        #expect(parsed(["reload", "--force=false"])?.parsed.flag("force") == false)
    }

    @Test func positionalArgumentsAndSubcommands() throws {
        let f = try #require(parsed(["fmt", "-w", "Caddyfile"]))
        #expect(f.path == ["fmt"] && f.parsed.flag("overwrite") && f.parsed.arguments == ["Caddyfile"])
        #expect(parsed(["fmt", "-"])?.parsed.arguments == ["-"])
        #expect(parsed(["fmt", "--", "--odd-name"])?.parsed.arguments == ["--odd-name"])
        let a = try #require(parsed(["acme", "revoke", "--reason", "4", "example.com"]))
        #expect(a.path == ["acme", "revoke"] && a.parsed.arguments == ["example.com"])
        #expect(try a.parsed.int("reason") == 4)
    }

    @Test func usageErrorsNameTheProblem() {
        #expect(failure(["bogus"]) == "unknown command \"bogus\" for \"berth\"")
        #expect(failure(["run", "--bogus"]) == "unknown flag: --bogus")
        #expect(failure(["run", "-x"]) == "unknown shorthand flag: 'x' in -x")
        #expect(failure(["run", "--config"]) == "flag needs an argument: --config")
        #expect(failure(["run", "extra"]) == "unexpected argument 'extra'")
        #expect(failure(["acme", "revoke"]) == "missing argument <name>")
        #expect(failure(["acme"])?.contains("needs a subcommand") == true)
        #expect(failure(["reload", "--force=maybe"])?.contains("expected true or false") == true)
        // An integer option is checked when the command runs.
        let r = parsed(["run", "--loops", "x"])
        #expect(throws: CLI.CLIError.self) { _ = try r?.parsed.int("loops") }
    }

    @Test func helpAndVersion() {
        for args in [[String](), ["--help"], ["-h"], ["help"]] {
            guard case .help(let text) = CLI.resolve(args) else {
                Issue.record("no help for \(args)")
                continue
            }
            #expect(text.contains("Usage: berth <command>") && text.contains("  reload "))
        }
        for args in [["run", "--help"], ["help", "run"], ["run", "-c", "x", "-h"]] {
            guard case .help(let text) = CLI.resolve(args) else {
                Issue.record("no help for \(args)")
                continue
            }
            #expect(text.contains("Usage: berth run [flags]") && text.contains("--pidfile <file>"))
        }
        if case .help = CLI.resolve(["fmt", "--", "-h"]) { Issue.record("-h after -- is an argument") }
        guard case .version = CLI.resolve(["--version"]) else {
            Issue.record("--version")
            return
        }
    }
}

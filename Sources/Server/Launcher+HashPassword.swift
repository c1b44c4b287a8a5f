#if canImport(Glibc)
import Glibc
#endif
import Handlers
import IOCore

extension Launcher {
    /// `berth hash-password [--plaintext P] [--algorithm bcrypt] [--bcrypt-cost N]`, as
    /// `caddy hash-password`: prints a `$2a$` bcrypt hash (cost 14 by default) for `basic_auth`.
    /// Without `--plaintext` the password is the first line of standard input (echo off on a
    /// terminal, asked twice there, as Caddy).
    static func hashPassword(plaintext: String?, algorithm: String?, cost: Int?) throws(CLI.CLIError) -> Int32 {
        if let a = algorithm, a != "bcrypt" {
            if a == "argon2id" { throw CLI.CLIError("hash algorithm 'argon2id' is not supported by this Berth build yet (bcrypt only)") }
            throw CLI.CLIError("unrecognized hash algorithm: \(a)")
        }
        let c = cost ?? 14
        guard (4...31).contains(c) else { throw CLI.CLIError("invalid bcrypt cost \(c) (4-31)") }
        var password: String
        if let p = plaintext {
            password = p
        } else if isatty(0) == 1 {
            guard let first = readSecret("Enter password: "), let again = readSecret("Confirm password: ") else {
                FileIO.writeAll(2, "Error: reading password\n")
                return 1
            }
            guard first == again else {
                FileIO.writeAll(2, "Error: password does not match\n")
                return 1
            }
            password = first
        } else {
            password = readLine(strippingNewline: true) ?? ""
        }
        if password.isEmpty {
            FileIO.writeAll(2, "Error: empty passwords are not allowed\n")
            return 1
        }
        guard let hash = PasswordHash.bcrypt(password, cost: c) else {
            FileIO.writeAll(2, "Error: hashing the password failed\n")
            return 1
        }
        password = ""
        FileIO.writeAll(1, hash + "\n")
        return 0
    }

    /// One line from the terminal with echo off.
    private static func readSecret(_ prompt: String) -> String? {
        FileIO.writeAll(2, prompt)
        var old = termios()
        let haveTerm = tcgetattr(0, &old) == 0
        if haveTerm {
            var quiet = old
            quiet.c_lflag &= ~tcflag_t(ECHO)
            _ = tcsetattr(0, TCSANOW, &quiet)
        }
        let line = readLine(strippingNewline: true)
        if haveTerm { _ = tcsetattr(0, TCSANOW, &old) }
        FileIO.writeAll(2, "\n")
        return line
    }
}

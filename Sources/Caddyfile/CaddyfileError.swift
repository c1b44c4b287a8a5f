/// An error found while reading a Caddyfile. Its `description` is exactly the text Caddy prints
/// for the same problem (after `Error: adapting config using caddyfile: `).
package struct CaddyfileError: Error, CustomStringConvertible, Sendable, Hashable {
    /// How the location is attached to the message; Caddy uses three shapes.
    package enum Style: Sendable, Hashable {
        /// `MESSAGE, at FILE:LINE` or `MESSAGE, at FILE:LINE import chain ['A','B']`
        /// (Caddy's `Dispenser.WrapErr`).
        case located
        /// `MESSAGE, at FILE:LINE import chain: ['A','B']`, the chain always present even if empty
        /// (Caddy's `Dispenser.SyntaxErr`).
        case syntax
        /// Just the message: lexer errors of the top-level file, import cycles, empty input.
        case plain
    }

    /// The message without location.
    package var message: String
    /// The file of the token the error is about (`""` when unknown).
    package var file: String
    /// The line of that token (0 when unknown).
    package var line: Int
    /// The token's import chain.
    package var importChain: [String]
    /// How `description` renders the location.
    package var style: Style

    /// Creates an error.
    package init(
        message: String, file: String = "", line: Int = 0, importChain: [String] = [],
        style: Style = .located
    ) {
        self.message = message
        self.file = file
        self.line = line
        self.importChain = importChain
        self.style = style
    }

    /// Creates a located error about `token`.
    package init(_ message: String, at token: Token) {
        self.init(message: message, file: token.file, line: token.line, importChain: token.imports)
    }

    /// The error as Caddy prints it.
    package var description: String {
        let chain = "['" + importChain.joined(separator: "','") + "']"
        switch style {
        case .plain:
            return message
        case .syntax:
            return "\(message), at \(file):\(line) import chain: \(chain)"
        case .located:
            if importChain.isEmpty { return "\(message), at \(file):\(line)" }
            return "\(message), at \(file):\(line) import chain \(chain)"
        }
    }

    /// Caddy's error when a block without keys (a global options block) is not the first block.
    /// Caddy raises it while setting up the HTTP app (after the directives of earlier blocks were
    /// checked), so the config layer decides when to throw it; it has no location.
    package static func globalOptionsNotFirst() -> CaddyfileError {
        CaddyfileError(
            message:
                "server block without any key is global configuration, and if used, it must be first",
            style: .plain)
    }
}

/// A non-fatal note from the parser (Caddy logs these as warnings).
package struct CaddyfileWarning: Sendable, Hashable, CustomStringConvertible {
    /// What happened, e.g. `No files matching import glob pattern`.
    package var message: String
    /// The file or pattern concerned.
    package var subject: String

    /// Creates a warning.
    package init(message: String, subject: String) {
        self.message = message
        self.subject = subject
    }

    /// `MESSAGE: SUBJECT`.
    package var description: String { "\(message): \(subject)" }
}

/// Splits Caddyfile text into tokens with Caddy v2.11's rules (`caddyconfig/caddyfile/lexer.go`).
///
/// - Tokens are separated by Unicode whitespace; `\r` outside quotes is ignored.
/// - `#` starts a comment only at the start of a token (`a#b` is one token); it ends at `\n`.
/// - `"…"` may span lines; its only escape is `\"` (any other `\c` keeps the backslash).
/// - `` `…` `` is raw.
/// - An unquoted `\` before a newline continues the line: the next tokens keep the line number.
/// - `<<MARKER` + newline opens a heredoc closed by MARKER; the closing marker's indentation is
///   stripped from every line. `\<<` is not a heredoc.
/// - A leading byte order mark is dropped.
///
/// Environment variables (`{$VAR}`) are *not* handled here; see ``EnvironmentSubstitution``.
package struct Lexer {
    private let input: [Unicode.Scalar]
    private var position = 0
    /// The current line (continuation and heredoc lines are added when the logical line ends).
    var line = 1
    private var skippedLines = 0

    /// Tokenizes `input` (already env-substituted) and stamps every token with `filename`.
    ///
    /// Errors are Caddy's lexer errors (`incomplete heredoc …`, `mismatched leading whitespace …`),
    /// without location, exactly as Caddy returns them; empty input is the error `EOF`.
    package static func tokenize(_ input: [UInt8], filename: String) throws(CaddyfileError)
        -> [Token]
    {
        var lexer = Lexer(input: Runes.decode(input))
        guard !lexer.input.isEmpty else {
            // Caddy's lexer fails to read the first rune of an empty input and returns io.EOF.
            throw CaddyfileError(message: "EOF", style: .plain)
        }
        if lexer.input.first?.value == 0xFEFF { lexer.position = 1 }
        var tokens: [Token] = []
        while var token = try lexer.next() {
            token.file = filename
            tokens.append(token)
        }
        return tokens
    }

    private init(input: [Unicode.Scalar]) {
        self.input = input
    }

    private mutating func readRune() -> Unicode.Scalar? {
        guard position < input.count else { return nil }
        defer { position += 1 }
        return input[position]
    }

    /// Scanner flags for one token (Caddy keeps them as locals of `next()`).
    private struct Scan {
        var val: [Unicode.Scalar] = []
        var comment = false
        var quoted = false
        var backtickQuoted = false
        var inHeredoc = false
        var heredocEscaped = false
        var escaped = false
        var heredocMarker = ""
        var heredocMarkerScalars: [Unicode.Scalar] = []
        var startLine = 0

        /// The token collected so far.
        func make(_ quote: QuoteStyle) -> Token {
            Token(line: startLine, text: Runes.string(val), quote: quote)
        }

        /// Whether `val` ends with `suffix` (compared in place).
        func valEnds(with suffix: [Unicode.Scalar]) -> Bool {
            guard val.count >= suffix.count else { return false }
            var i = val.count - 1
            var j = suffix.count - 1
            while j >= 0 {
                if val[i] != suffix[j] { return false }
                i -= 1
                j -= 1
            }
            return true
        }

        /// Whether `val` starts with `prefix` (ASCII).
        func valStarts(with prefix: String) -> Bool {
            let p = Array(prefix.unicodeScalars)
            return val.count >= p.count && Array(val.prefix(p.count)) == p
        }
    }

    private static let lt = Unicode.Scalar(UInt8(ascii: "<"))
    private static let newline = Unicode.Scalar(UInt8(ascii: "\n"))
    private static let cr = Unicode.Scalar(UInt8(ascii: "\r"))
    private static let backslash = Unicode.Scalar(UInt8(ascii: "\\"))
    private static let dquote = Unicode.Scalar(UInt8(ascii: "\""))
    private static let backtick = Unicode.Scalar(UInt8(ascii: "`"))
    private static let hash = Unicode.Scalar(UInt8(ascii: "#"))
    private static let space = Unicode.Scalar(UInt8(ascii: " "))

    /// Reads the next token, or `nil` at the end of input.
    private mutating func next() throws(CaddyfileError) -> Token? {
        var s = Scan()
        while true {
            guard let ch = readRune() else {
                if !s.val.isEmpty {
                    if s.inHeredoc {
                        throw Self.plain(
                            "incomplete heredoc <<\(s.heredocMarker) on line #\(line + skippedLines), "
                                + "expected ending marker \(s.heredocMarker)")
                    }
                    return s.make(.none)
                }
                return nil
            }

            // Opening of a heredoc: a bare token that starts with "<<".
            if !s.quoted && !s.backtickQuoted && !s.inHeredoc && !s.heredocEscaped
                && s.val.count > 1 && s.valStarts(with: "<<")
            {
                if ch == Self.space { return s.make(.none) }
                if ch == Self.cr { continue }
                if ch == Self.newline {
                    try openHeredoc(&s)
                    continue
                }
                s.val.append(ch)
                continue
            }

            if s.inHeredoc {
                s.val.append(ch)
                if ch == Self.newline { skippedLines += 1 }
                if s.valEnds(with: s.heredocMarkerScalars) {
                    s.val = try finalizeHeredoc(s.val, marker: s.heredocMarker)
                    line += skippedLines
                    skippedLines = 0
                    return s.make(.heredoc(marker: s.heredocMarker))
                }
                continue
            }

            if !s.escaped && !s.backtickQuoted && ch == Self.backslash {
                s.escaped = true
                continue
            }

            if s.quoted || s.backtickQuoted {
                if s.quoted && s.escaped {
                    // Inside double quotes only \" is an escape; keep the backslash otherwise.
                    if ch != Self.dquote { s.val.append(Self.backslash) }
                    s.escaped = false
                } else if s.quoted && ch == Self.dquote {
                    return s.make(.doubleQuotes)
                } else if s.backtickQuoted && ch == Self.backtick {
                    return s.make(.backticks)
                }
                if ch == Self.newline {
                    line += 1 + skippedLines
                    skippedLines = 0
                }
                s.val.append(ch)
                continue
            }

            if Runes.isSpace(ch) {
                if ch == Self.cr { continue }
                if ch == Self.newline {
                    if s.escaped {
                        skippedLines += 1
                        s.escaped = false
                    } else {
                        line += 1 + skippedLines
                        skippedLines = 0
                    }
                    s.comment = false
                }
                if !s.val.isEmpty { return s.make(.none) }
                continue
            }

            if ch == Self.hash && s.val.isEmpty { s.comment = true }
            if s.comment { continue }

            if s.val.isEmpty {
                s.startLine = line
                if ch == Self.dquote {
                    s.quoted = true
                    continue
                }
                if ch == Self.backtick {
                    s.backtickQuoted = true
                    continue
                }
            }

            if s.escaped {
                // "\<" only suppresses a heredoc; any other escaped character keeps its backslash.
                if ch == Self.lt {
                    s.heredocEscaped = true
                } else {
                    s.val.append(Self.backslash)
                }
                s.escaped = false
            }
            s.val.append(ch)
        }
    }

    /// Validates the marker collected after `<<` and switches to heredoc mode.
    private mutating func openHeredoc(_ s: inout Scan) throws(CaddyfileError) {
        if s.val.count == 2 {
            throw Self.plain(
                "missing opening heredoc marker on line #\(line); must contain only alphanumeric "
                    + "characters, dashes and underscores; got empty string")
        }
        if s.valStarts(with: "<<<") {
            throw Self.plain(
                "too many '<' for heredoc on line #\(line); only use two, for example <<END")
        }
        let marker = Runes.string(s.val.dropFirst(2))
        if !Self.isValidHeredocMarker(marker) {
            throw Self.plain(
                "heredoc marker on line #\(line) must contain only alphanumeric characters, "
                    + "dashes and underscores; got '\(marker)'")
        }
        s.heredocMarker = marker
        s.heredocMarkerScalars = Array(marker.unicodeScalars)
        s.inHeredoc = true
        skippedLines += 1
        s.val = []
    }

    /// `^[A-Za-z0-9_-]+$`
    static func isValidHeredocMarker(_ marker: String) -> Bool {
        guard !marker.utf8.isEmpty else { return false }
        return marker.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }
    }

    /// A lexer error: Caddy reports these without location.
    static func plain(_ message: String) -> CaddyfileError {
        CaddyfileError(message: message, style: .plain)
    }
}

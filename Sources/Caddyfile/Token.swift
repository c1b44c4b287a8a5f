/// How a token was written in the Caddyfile.
///
/// Directive parsers need this: a quoted `"{"` is an ordinary argument, never a block brace, and
/// some directives (e.g. `respond`) treat a quoted body differently from a bare word.
package enum QuoteStyle: Sendable, Hashable {
    /// A bare word.
    case none
    /// `"…"`: only `\"` is an escape.
    case doubleQuotes
    /// `` `…` ``: raw text, no escapes.
    case backticks
    /// `<<MARKER … MARKER`; the marker is kept for diagnostics.
    case heredoc(marker: String)

    /// The quote character Caddy records (`"`, `` ` `` or `<`), or `nil` for a bare word.
    package var character: Character? {
        switch self {
        case .none: return nil
        case .doubleQuotes: return "\""
        case .backticks: return "`"
        case .heredoc: return "<"
        }
    }
}

/// One lexical unit of a Caddyfile, with where it came from.
package struct Token: Sendable, Hashable {
    /// The file the token was read from (absolute for imported files, as given for the top file).
    package var file: String
    /// 1-based line where the token starts (continuation lines keep the line of their first line).
    package var line: Int
    /// The token's text with quotes removed and (for heredocs) indentation stripped.
    package var text: String
    /// How the token was quoted.
    package var quote: QuoteStyle
    /// The import chain, outermost last, e.g. `["Caddyfile:7 (import common)"]`.
    package var imports: [String]
    /// The snippet this token was defined in, if any (used for import-cycle detection).
    package var snippetName: String

    /// Creates a token.
    package init(
        file: String = "", line: Int = 0, text: String, quote: QuoteStyle = .none,
        imports: [String] = [], snippetName: String = ""
    ) {
        self.file = file
        self.line = line
        self.text = text
        self.quote = quote
        self.imports = imports
        self.snippetName = snippetName
    }

    /// Whether the token was enclosed in double quotes, backticks, or a heredoc.
    package var isQuoted: Bool { quote != .none }

    /// Whether this is a structural (unquoted) `{`.
    package var isOpenBrace: Bool { quote == .none && text.bytesEqual("{") }

    /// Whether this is a structural (unquoted) `}`.
    package var isCloseBrace: Bool { quote == .none && text.bytesEqual("}") }

    /// The heredoc marker, if the token is a heredoc.
    package var heredocMarker: String? {
        if case .heredoc(let marker) = quote { return marker }
        return nil
    }

    /// The number of line breaks the token spans in the source (heredocs add two: the opening
    /// line and the closing marker line, which are not part of the text).
    package var lineBreakCount: Int {
        var n = 0
        for b in text.utf8 where b == 0x0A { n += 1 }
        if case .heredoc = quote { n += 2 }
        return n
    }

    /// The text as written, with its quotes put back (heredocs return the bare text, like Caddy's
    /// `ValRaw`).
    package var rawText: String {
        switch quote {
        case .doubleQuotes: return "\"" + text + "\""
        case .backticks: return "`" + text + "`"
        case .none, .heredoc: return text
        }
    }

    /// Whether `next` starts on a later line than `self` ends (tokens from another file or another
    /// import chain always count as a new line).
    package func isFollowedOnNewLine(by next: Token) -> Bool {
        if !file.bytesEqual(next.file) { return true }
        if imports.count != next.imports.count { return true }
        for (a, b) in zip(imports, next.imports) where !a.bytesEqual(b) { return true }
        return line + lineBreakCount < next.line
    }
}

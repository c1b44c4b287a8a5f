/// Formats a Caddyfile byte-for-byte like `caddy fmt` (Caddy v2.11 `caddyfile.Format`).
///
/// The formatter takes control of braces, indentation (one tab per level, at most 10 levels) and
/// blank lines (at most one in a row; one between top-level blocks); words, comments, quoted
/// text, heredocs and escapes are copied as written. It never fails: any input gives some output,
/// always ending with one newline.
package enum CaddyfileFormatter {
    /// Formats `input`.
    package static func format(_ input: [UInt8]) -> [UInt8] {
        let scalars = Runes.decode(Array(Runes.trimSpace(input)))
        var state = FormatterState()
        for ch in scalars { state.feed(ch) }
        state.finish()
        let trimmed = Runes.trimSpace(state.out)
        return Array(trimmed) + [UInt8(ascii: "\n")]
    }

    /// Whether `input` is already formatted, comparing like Caddy's `FormattingDifference` (CRLF
    /// line endings are normalized first). Returns the 1-based line of the first difference, or
    /// `nil` when formatted. Caddy warns: `Caddyfile input is not formatted; run 'caddy fmt
    /// --overwrite' to fix inconsistencies`.
    package static func firstUnformattedLine(_ input: [UInt8]) -> Int? {
        var normalized: [UInt8] = []
        normalized.reserveCapacity(input.count)
        var i = 0
        while i < input.count {
            if input[i] == UInt8(ascii: "\r"), i + 1 < input.count, input[i + 1] == UInt8(ascii: "\n") {
                i += 1
                continue
            }
            normalized.append(input[i])
            i += 1
        }
        let formatted = format(normalized)
        if formatted == normalized { return nil }
        var line = 1
        for (index, byte) in normalized.enumerated() {
            if index >= formatted.count || byte != formatted[index] { break }
            if byte == UInt8(ascii: "\n") { line += 1 }
        }
        return line
    }
}

/// The formatter's state machine: one call to ``feed(_:)`` per input character.
struct FormatterState {
    /// Where a heredoc stands: `<<` seen (reading the marker), or inside the body.
    enum Heredoc { case closed, opening, opened }
    /// Quote nesting as Caddy tracks it (`"`, `` ` ``, `"` then `` ` ``, and the reverse).
    enum Quotes { case none, double, backtick, doubleThenBacktick, backtickThenDouble }

    /// The output so far.
    var out: [UInt8] = []
    /// The last character written.
    var last: Unicode.Scalar = Unicode.Scalar(0)

    /// Whether the previous character was whitespace (the start counts as space).
    var space = true
    /// Whether nothing but indentation was written on the current output line.
    var beginningOfLine = true

    /// Whether the current word is or started with `{`.
    var openBrace = false
    /// Whether that `{` was written already.
    var openBraceWritten = false
    /// Whether a non-newline space came before the `{`.
    var openBraceSpace = false
    /// Whether the `{` came after a newline.
    var openBraceOwnLine = false

    /// Newlines read and not yet written.
    var newLines = 0

    /// Inside a `#` comment.
    var comment = false
    /// Quote state.
    var quotes = Quotes.none
    /// The previous character was an unconsumed `\`.
    var escaped = false

    /// Heredoc state.
    var heredoc = Heredoc.closed
    /// `\<` was seen in the current word: `<<` does not open a heredoc.
    var heredocEscaped = false
    /// The heredoc's marker.
    var heredocMarker: [Unicode.Scalar] = []
    /// The last characters of the heredoc body (to find the closing marker).
    var heredocClosingMarker: [Unicode.Scalar] = []

    /// Indentation level (at most 10).
    var nesting = 0

    /// The first word of the current input line.
    var currentLineFirstToken: [Unicode.Scalar] = []
    /// The word being read.
    var currentToken: [Unicode.Scalar] = []
    /// Whether the previous line was `import …` at the top level (its `{` stays on its own line).
    var previousLineWasTopLevelImport = false

    /// `import`.
    static let importWord = Array("import".unicodeScalars)

    /// Writes one character.
    mutating func write(_ ch: Unicode.Scalar) {
        Runes.appendUTF8(ch, to: &out)
        last = ch
    }

    /// Writes one tab per nesting level.
    mutating func indent() {
        for _ in 0..<max(0, nesting) { write("\t") }
    }

    /// Ends the output line.
    mutating func nextLine() {
        write("\n")
        beginningOfLine = true
    }

    /// Ends the current word.
    mutating func finishToken() {
        if currentToken.isEmpty { return }
        if currentLineFirstToken.isEmpty { currentLineFirstToken = currentToken }
        currentToken.removeAll(keepingCapacity: true)
    }

    /// Ends the current input line (remembers whether it was a top-level `import`).
    mutating func finishLine() {
        finishToken()
        if !currentLineFirstToken.isEmpty {
            previousLineWasTopLevelImport = nesting == 0 && currentLineFirstToken == Self.importWord
        } else if !openBrace || !openBraceOwnLine || openBraceWritten {
            previousLineWasTopLevelImport = false
        }
        currentLineFirstToken.removeAll(keepingCapacity: true)
    }

    /// End of input: a `{` still pending is written (caddy v2.11.7 keeps it).
    mutating func finish() {
        if openBrace && !openBraceWritten { writePendingBrace() }
    }

    /// Consumes one input character.
    mutating func feed(_ ch: Unicode.Scalar) {
        // Start of a heredoc: "<<" after a space.
        if quotes == .none && heredoc == .closed && !heredocEscaped && space && last == "<"
            && ch == "<"
        {
            write(ch)
            heredoc = .opening
            space = false
            return
        }

        if heredoc == .opening {
            if ch == "\n" {
                if !heredocMarker.isEmpty && Lexer.isValidHeredocMarker(Runes.string(heredocMarker)) {
                    heredoc = .opened
                } else {
                    heredocMarker = []
                    heredoc = .closed
                    nextLine()
                    return
                }
                write(ch)
                return
            }
            if Runes.isSpace(ch) {
                heredocMarker = []  // "<< " is an ordinary word
                heredoc = .closed
            } else {
                heredocMarker.append(ch)
                write(ch)
                return
            }
        }

        if heredoc == .opened {
            heredocClosingMarker.append(ch)
            if heredocClosingMarker.count > heredocMarker.count + 1 {
                heredocClosingMarker.removeFirst()
            }
            // Closed when the marker is followed by whitespace.
            if Runes.isSpace(ch) && heredocClosingMarker.dropLast().elementsEqual(heredocMarker) {
                heredocMarker = []
                heredocClosingMarker = []
                heredoc = .closed
            } else {
                write(ch)
                if ch == "\n" { heredocClosingMarker.removeAll(keepingCapacity: true) }
                return
            }
        }

        if last == "<" && space { space = false }

        if comment {
            if ch == "\n" {
                comment = false
                space = true
                nextLine()
            } else {
                write(ch)
            }
            return
        }

        if !escaped && ch == "\\" {
            if space {
                write(" ")
                space = false
            }
            write(ch)
            escaped = true
            return
        }

        if escaped {
            if ch == "<" { heredocEscaped = true }
            write(ch)
            escaped = false
            return
        }

        if ch == "`" {
            switch quotes {
            case .doubleThenBacktick: quotes = .double
            case .backtick: quotes = .none
            case .double: quotes = .doubleThenBacktick
            default: quotes = .backtick
            }
        }

        if quotes == .double {
            if ch == "\"" { quotes = .none }
            write(ch)
            return
        }

        if ch == "\"" {
            switch quotes {
            case .none: if space { quotes = .double }
            case .backtickThenDouble: quotes = .backtick
            case .doubleThenBacktick: quotes = .none
            default: break
            }
        }

        if quotes == .backtick || quotes == .doubleThenBacktick || quotes == .backtickThenDouble {
            if ch == "`" && space && !beginningOfLine { write(" ") }
            write(ch)
            space = false
            return
        }

        if Runes.isSpace(ch) {
            finishToken()
            space = true
            heredocEscaped = false
            if ch == "\n" {
                finishLine()
                newLines += 1
            }
            return
        }

        regularCharacter(ch)
    }
}

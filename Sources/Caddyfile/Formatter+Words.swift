extension FormatterState {
    /// Writes a pending `{` as the opening of a block: on its own line after a top-level `}` or
    /// a top-level `import` line, otherwise after one space; then a newline and one more level.
    mutating func writePendingBrace() {
        if nesting == 0 && last == "}" {
            nextLine()
            nextLine()
        }
        openBrace = false
        if openBraceOwnLine && previousLineWasTopLevelImport {
            if last != "\n" { nextLine() }
            indent()
        } else if beginningOfLine {
            indent()
        } else if !openBraceSpace || !Runes.isSpace(last) {
            write(" ")
        }
        write("{")
        openBraceWritten = true
        openBraceOwnLine = false
        nextLine()
        newLines = 0
        if nesting < 10 { nesting += 1 }  // bounded, like Caddy (issue #4169)
    }

    /// A character outside comments, quotes, heredocs and escapes, and not whitespace: this is
    /// where braces, indentation and blank lines are decided.
    mutating func regularCharacter(_ ch: Unicode.Scalar) {
        let spacePrior = space
        space = false

        if ch == "#" { comment = true }

        // A pending "{" followed by a new word: the brace opens a block.
        if openBrace && spacePrior && !openBraceWritten {
            writePendingBrace()
        }

        if ch == "{" {
            finishToken()
            // A second "{" while one is pending: the pending one opens a block (caddy v2.11.7
            // keeps it; the v2.11.4 source dropped it).
            if openBrace && !openBraceWritten { writePendingBrace() }
            openBrace = true
            openBraceSpace = spacePrior && !beginningOfLine
            openBraceOwnLine = newLines > 0
            if openBraceSpace && newLines == 0 { write(" ") }
            openBraceWritten = false
            if quotes == .backtick {
                write("{")
                openBraceWritten = true
                openBraceOwnLine = false
            }
            return
        }

        if ch == "}" && (spacePrior || !openBrace) {
            finishToken()
            if quotes == .backtick {
                write("}")
                return
            }
            if last != "\n" { nextLine() }
            if nesting > 0 { nesting -= 1 }
            indent()
            write("}")
            newLines = 0
            return
        }

        for _ in 0..<min(newLines, 2) { nextLine() }
        newLines = 0
        if beginningOfLine { indent() }
        if nesting == 0 && last == "}" && beginningOfLine {
            nextLine()
            nextLine()
        }

        if !beginningOfLine && spacePrior { write(" ") }

        if openBrace && !openBraceWritten {
            write("{")
            openBraceWritten = true
        }

        if spacePrior && ch == "<" { space = true }

        currentToken.append(ch)
        write(ch)
        beginningOfLine = false
    }
}

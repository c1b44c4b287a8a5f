/// Walks a token array with a notion of lines and blocks (Caddy's `caddyfile.Dispenser`).
///
/// Directive parsers use it instead of indexing arrays: every accessor is bounds-checked and
/// returns an empty value when no token is loaded. A fresh dispenser is positioned *before* the
/// first token; call ``next()`` to load it.
///
/// ```swift
/// var d = Dispenser(segment)
/// d.next()                                   // the directive name
/// let args = d.remainingArgs()
/// for nesting in [d.nesting]; d.nextBlock(nesting) { … d.val … }
/// ```
package struct Dispenser: Sendable {
    /// The tokens being dispensed (changed only by ``delete()`` and ``deleteN(_:)``).
    package internal(set) var tokens: [Token]
    /// Index of the current token; -1 before the first.
    package internal(set) var cursor: Int
    /// Current block depth, maintained by ``nextBlock(_:)``.
    package internal(set) var nesting: Int
    /// Free-form context passed between unmarshalers (Caddy's `SetContext`/`GetContext`).
    package var context: [String: String] = [:]

    /// A dispenser over `tokens`, positioned before the first one.
    package init(_ tokens: [Token]) {
        self.tokens = tokens
        self.cursor = -1
        self.nesting = 0
    }

    /// A dispenser over a segment's tokens.
    package init(_ segment: Segment) {
        self.init(segment.tokens)
    }

    /// Lexes `input` (no env substitution, no imports) into a dispenser named `Testfile`;
    /// lexing errors are returned as thrown errors. Meant for tests.
    package init(testInput input: String) throws(CaddyfileError) {
        self.init(try Lexer.tokenize(Array(input.utf8), filename: "Testfile"))
    }

    // MARK: - Moving

    /// Loads the next token; `false` when all tokens are consumed.
    @discardableResult
    package mutating func next() -> Bool {
        guard cursor < tokens.count - 1 else { return false }
        cursor += 1
        return true
    }

    /// Moves back one token; may go to -1 so that ``next()`` starts over. Returns whether a token
    /// is loaded afterwards.
    @discardableResult
    package mutating func prev() -> Bool {
        guard cursor > -1 else { return false }
        cursor -= 1
        return cursor > -1
    }

    /// Loads the next token if it is on the same line and is not a block opening (an unquoted
    /// `{`). A quoted brace is an ordinary argument.
    @discardableResult
    package mutating func nextArg() -> Bool {
        guard nextOnSameLine() else { return false }
        if token.isOpenBrace {
            cursor -= 1  // a block opening is not an argument
            return false
        }
        return true
    }

    /// Advances if the next token is on the same line (of the same file and import chain).
    mutating func nextOnSameLine() -> Bool {
        if cursor < 0 {
            cursor += 1
            return true
        }
        guard cursor < tokens.count - 1, let current = tokens[safe: cursor],
            let following = tokens[safe: cursor + 1]
        else { return false }
        if !current.isFollowedOnNewLine(by: following) {
            cursor += 1
            return true
        }
        return false
    }

    /// Loads the next token only if it starts a new line.
    @discardableResult
    package mutating func nextLine() -> Bool {
        if cursor < 0 {
            cursor += 1
            return true
        }
        guard cursor < tokens.count - 1, let current = tokens[safe: cursor],
            let following = tokens[safe: cursor + 1]
        else { return false }
        if current.isFollowedOnNewLine(by: following) {
            cursor += 1
            return true
        }
        return false
    }

    /// Iterates the tokens of the block that opens at the end of the current line, for use as a
    /// loop condition: `let n = d.nesting; while d.nextBlock(n) { … }`. The outermost braces are
    /// consumed and not returned; inner braces are.
    package mutating func nextBlock(_ initialNesting: Int) -> Bool {
        if nesting > initialNesting {
            guard next() else { return false }  // EOF: callers report it
            if token.isCloseBrace && !nextOnSameLine() {
                nesting -= 1
            } else if token.isOpenBrace && !nextOnSameLine() {
                nesting += 1
            }
            return nesting > initialNesting
        }
        guard nextOnSameLine() else { return false }  // a block must open on the same line
        guard token.isOpenBrace else {
            cursor -= 1
            return false
        }
        next()  // consume the open brace
        if token.isCloseBrace { return false }  // "{}" spread over lines: empty block
        nesting += 1
        return true
    }

    /// Starts over, as a new dispenser.
    package mutating func reset() {
        cursor = -1
        nesting = 0
    }

    // MARK: - Reading

    /// The current token, or an empty token when none is loaded.
    package var token: Token {
        tokens[safe: cursor] ?? Token(text: "")
    }

    /// The current token's text, or `""`.
    package var val: String { tokens[safe: cursor]?.text ?? "" }

    /// The current token's text with its quotes (heredocs without their markers), or `""`.
    package var valRaw: String { tokens[safe: cursor]?.rawText ?? "" }

    /// The current token's line, or 0.
    package var line: Int { tokens[safe: cursor]?.line ?? 0 }

    /// The current token's file, or `""`.
    package var file: String { tokens[safe: cursor]?.file ?? "" }

    /// Whether the current token starts a new line (true when there is no previous token).
    package var isNewLine: Bool {
        if cursor < 1 { return true }
        guard let previous = tokens[safe: cursor - 1], let current = tokens[safe: cursor] else {
            return false
        }
        return previous.isFollowedOnNewLine(by: current)
    }

    /// Whether the token after the current one starts a new line (true at the end).
    package var isNextOnNewLine: Bool {
        if cursor < 0 { return false }
        guard let current = tokens[safe: cursor], let following = tokens[safe: cursor + 1] else {
            return true
        }
        return current.isFollowedOnNewLine(by: following)
    }

    /// The scalar value of the current token like Caddy's `ScalarVal`: quoted tokens are strings;
    /// otherwise an integer, then a float, then a boolean is tried. `nil` when no token is loaded.
    package var scalarVal: ScalarValue? {
        guard let t = tokens[safe: cursor] else { return nil }
        return ScalarValue(t)
    }

    // MARK: - Editing

    /// Deletes the current token without advancing (the cursor moves back one); returns the
    /// updated tokens.
    @discardableResult
    package mutating func delete() -> [Token] {
        if cursor >= 0 && cursor < tokens.count {
            tokens.remove(at: cursor)
            cursor -= 1
        }
        return tokens
    }

    /// Deletes the current token and the `amount - 1` before it; nothing when there are not that
    /// many. Returns the updated tokens.
    @discardableResult
    package mutating func deleteN(_ amount: Int) -> [Token] {
        if amount > 0 && cursor >= amount - 1 && cursor < tokens.count {
            tokens.removeSubrange((cursor - (amount - 1))...cursor)
            cursor -= amount
        }
        return tokens
    }
}

extension Array {
    /// The element at `index`, or `nil` when out of bounds.
    subscript(safe index: Int) -> Element? {
        indices.contains(index) ? self[index] : nil
    }
}

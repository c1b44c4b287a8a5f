/// Groups Caddyfile tokens into server blocks, exactly like Caddy v2.11's `caddyfile.Parse`:
///
/// - an optional first block without keys holds global options (see
///   ``ServerBlock/isGlobalOptions``);
/// - each site block is `addr[, addr…] {` (a trailing comma continues the list on the next line);
///   a single site may omit braces;
/// - snippets `(name) { … }` are stored and expanded by `import name args…`; `import` also takes a
///   file or glob relative to the importing file;
/// - named routes `&(name) { … }` are kept whole as one segment;
/// - a `{` must end its line and may not start one.
///
/// Errors carry Caddy's exact text and location (`…, at FILE:LINE`).
package struct CaddyfileParser: Sendable {
    /// Values for `{$VAR}`; pass ``EnvironmentSubstitution/processEnvironment()`` in production.
    package var environment: [String: String]
    /// What `import FILE` may read.
    package var importResolver: any ImportResolver
    /// Upper bound on the number of tokens all imports may insert (Caddy has none; it guards
    /// against exponential snippet expansion in untrusted or fuzzed input).
    package var maxImportedTokens: Int

    /// Creates a parser.
    package init(
        environment: [String: String],
        importResolver: any ImportResolver = LocalImportResolver(),
        maxImportedTokens: Int = 1_000_000
    ) {
        self.environment = environment
        self.importResolver = importResolver
        self.maxImportedTokens = maxImportedTokens
    }

    /// The result of parsing: server blocks in file order, and the warnings Caddy would log.
    package struct Result: Sendable {
        /// The server blocks (snippets are not included; named routes are).
        package var blocks: [ServerBlock]
        /// Notes such as `No files matching import glob pattern`.
        package var warnings: [CaddyfileWarning]
    }

    /// Parses `input` read from `filename` into server blocks.
    package func parse(_ input: [UInt8], filename: String) throws(CaddyfileError)
        -> [ServerBlock]
    {
        try parseWithWarnings(input, filename: filename).blocks
    }

    /// Parses and also returns the warnings.
    package func parseWithWarnings(_ input: [UInt8], filename: String) throws(CaddyfileError)
        -> Result
    {
        let tokens = try tokenize(input, filename: filename)
        var state = ParserState(tokens: tokens, options: self)
        let blocks = try state.parseAll()
        return Result(blocks: blocks, warnings: state.warnings)
    }

    /// Substitutes `{$VAR}` and lexes, without grouping (Caddy's `allTokens`).
    package func tokenize(_ input: [UInt8], filename: String) throws(CaddyfileError) -> [Token] {
        try Lexer.tokenize(
            EnvironmentSubstitution.apply(input, environment: environment), filename: filename)
    }
}

/// The mutable state of one parse (Caddy's `parser`, which embeds a `Dispenser`). Note that the
/// parser's own `nesting` (block depth of the directive being read) is distinct from the
/// dispenser's `nesting` (used by `nextBlock` while reading an import's block).
struct ParserState {
    /// The tokens and the cursor (imports splice tokens in place).
    var d: Dispenser
    /// Environment, resolver, limits.
    let options: CaddyfileParser
    /// The block being read.
    var block = ServerBlock()
    /// Set when the input ended while reading addresses.
    var eof = false
    /// Snippets by name (byte-exact keys, like Go's map of strings).
    var definedSnippets: [[UInt8]: [Token]] = [:]
    /// Block depth of the directive being read.
    var nesting = 0
    /// Files and snippets imported so far.
    var importGraph = ImportGraph()
    /// Notes for the caller.
    var warnings: [CaddyfileWarning] = []
    /// Tokens inserted by imports so far (see ``CaddyfileParser/maxImportedTokens``).
    var importedTokenCount = 0

    /// Starts before the first of `tokens`.
    init(tokens: [Token], options: CaddyfileParser) {
        self.d = Dispenser(tokens)
        self.options = options
    }

    /// Reads every block (Caddy's `parseAll`).
    mutating func parseAll() throws(CaddyfileError) -> [ServerBlock] {
        var blocks: [ServerBlock] = []
        while d.next() {
            block = ServerBlock()
            try begin()
            if !block.keys.isEmpty || !block.segments.isEmpty { blocks.append(block) }
            if nesting > 0 { throw d.eofErr() }
        }
        return blocks
    }

    /// Moves the cursor back by one (never below -1).
    mutating func stepBack() {
        d.cursor = max(-1, d.cursor - 1)
    }

    private mutating func begin() throws(CaddyfileError) {
        if d.tokens.isEmpty { return }
        try addresses()
        if eof { return }  // the file is only a line of addresses

        if let name = Self.enclosedName(block.keys, prefix: "&(") {
            var nameToken = d.token
            nameToken.text = name
            block.keys = [nameToken]
            block.isNamedRoute = true
            let tokens = try blockTokens(retainBraces: true)
            block.segments = [Segment([nameToken] + tokens)]
            return
        }

        if let name = Self.enclosedName(block.keys, prefix: "(") {
            let key = Array(name.utf8)
            if definedSnippets[key] != nil {
                throw d.err("redeclaration of previously declared snippet \(name)")
            }
            var tokens = try blockTokens(retainBraces: false)
            for i in tokens.indices { tokens[i].snippetName = name }
            definedSnippets[key] = tokens
            block.keys = []
            return
        }

        try blockContents()
    }

    /// For a block whose only key is `PREFIX…)`, the text between prefix and `)`.
    private static func enclosedName(_ keys: [Token], prefix: String) -> String? {
        guard keys.count == 1, let text = keys.first?.text, text.bytesHavePrefix(prefix),
            text.bytesHaveSuffix(")")
        else { return nil }
        let bytes = Array(text.utf8)
        let start = prefix.utf8.count
        let end = bytes.count - 1
        guard start <= end else { return nil }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    private mutating func addresses() throws(CaddyfileError) {
        var expectingAnother = false
        while true {
            var value = d.val
            var token = d.token

            if value.bytesHavePrefix("@") {
                throw d.err(
                    "request matchers may not be defined globally, they must be in a site block; "
                        + "found \(value)")
            }
            if value.bytesEqual("import") && d.isNewLine {
                try doImport(nesting: 0)
                continue
            }
            if token.isOpenBrace {
                if expectingAnother {
                    throw d.err("Expected another address but had '\(value)' - check for extra comma")
                }
                block.hasBraces = true
                break
            }
            if value.bytesHaveSuffix("{") && token.quote == .none {
                throw d.err(
                    "Site addresses cannot end with a curly brace: '\(value)' - put a space between "
                        + "the token and the brace")
            }
            if !value.isEmpty {
                if value.utf8.last == UInt8(ascii: ",") {
                    value = String(decoding: value.utf8.dropLast(), as: UTF8.self)
                    expectingAnother = true
                } else {
                    expectingAnother = false
                }
                if value.bytesContain(UInt8(ascii: ",")) {
                    throw d.err(
                        "Site addresses cannot contain a comma ',': '\(value)' - put a space after "
                            + "the comma to separate site addresses")
                }
                if !value.isEmpty {
                    token.text = value
                    block.keys.append(token)
                }
            }

            let hasNext = d.next()
            if expectingAnother && !hasNext { throw d.eofErr() }
            if !hasNext {
                eof = true
                break
            }
            if !expectingAnother && d.isNewLine { break }
        }
    }

    private mutating func blockContents() throws(CaddyfileError) {
        let openError = openBraceError()
        if openError != nil {
            stepBack()  // a single site may omit the braces
        }
        try directives()
        if openError == nil, !d.token.isCloseBrace {
            throw d.syntaxErr("}")
        }
    }

    /// Reads directives until the end of input or the `}` that closes the block.
    private mutating func directives() throws(CaddyfileError) {
        while d.next() {
            if d.token.isCloseBrace { break }
            if d.val.bytesEqual("import") {
                try doImport(nesting: 1)
                stepBack()
                continue
            }
            try directive()
        }
    }

    /// Collects one segment: the directive's line and the block it opens.
    private mutating func directive() throws(CaddyfileError) {
        var segment = [d.token]
        while d.next() {
            let token = d.token
            if token.isOpenBrace {
                nesting += 1
                if !d.isNextOnNewLine {
                    throw d.err("Unexpected next token after '{' on same line")
                }
                if d.isNewLine {
                    throw d.err(
                        "Unexpected '{' on a new line; did you mean to place the '{' on the previous line?"
                    )
                }
            } else if token.text.bytesEqual("{}") && token.quote == .none {
                if d.isNextOnNewLine { throw d.err("Unexpected '{}' at end of line") }
            } else if d.isNewLine && nesting == 0 {
                stepBack()  // read too far
                break
            } else if token.isCloseBrace && nesting > 0 {
                nesting -= 1
            } else if token.isCloseBrace && nesting == 0 {
                throw d.err("Unexpected '}' because no matching opening brace")
            } else if token.text.bytesEqual("import") && d.isNewLine {
                try doImport(nesting: 1)
                stepBack()
                continue
            }
            segment.append(token)
        }
        block.segments.append(Segment(segment))
        if nesting > 0 { throw d.eofErr() }
    }

    /// The error for a current token that is not a block-opening `{` (Caddy's `openCurlyBrace`).
    private func openBraceError() -> CaddyfileError? {
        if d.token.isOpenBrace { return nil }
        if looksLikeGlobalOptionsAfterImportedSnippets() {
            return d.err(
                "global options block must appear before import directives; move the global options "
                    + "block to the top of the Caddyfile")
        }
        return d.syntaxErr("{")
    }

    private func looksLikeGlobalOptionsAfterImportedSnippets() -> Bool {
        guard d.val.bytesEqual("import"), !block.keys.isEmpty else { return false }
        return block.keys.allSatisfy { $0.text.bytesHavePrefix("(") && $0.text.bytesHaveSuffix(")") }
    }

    /// Reads a whole `{ … }` block for later replay (snippets, named routes).
    private mutating func blockTokens(retainBraces: Bool) throws(CaddyfileError) -> [Token] {
        if let error = openBraceError() { throw error }
        var depth = 1
        var tokens: [Token] = []
        if retainBraces { tokens.append(d.token) }
        while d.next() {
            let token = d.token
            if token.isCloseBrace {
                depth -= 1
                if depth == 0 {
                    if retainBraces { tokens.append(token) }
                    break
                }
            }
            if token.isOpenBrace { depth += 1 }
            tokens.append(token)
        }
        if depth != 0 { throw d.syntaxErr("}") }
        return tokens
    }
}

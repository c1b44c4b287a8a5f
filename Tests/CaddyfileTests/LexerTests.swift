import Testing

@testable import Caddyfile

@Suite("Lexer")
struct LexerTests {
    // MARK: whitespace and lines

    @Test func splitsOnSpacesTabsAndNewlines() throws {
        let tokens = try Support.lex("a b\tc\n\nd   e\n")
        #expect(tokens.map(\.text) == ["a", "b", "c", "d", "e"])
        #expect(tokens.map(\.line) == [1, 1, 1, 3, 3])
        #expect(tokens.allSatisfy { $0.file == "Testfile" && $0.quote == .none })
    }

    @Test func splitsOnUnicodeWhitespace() throws {
        // NBSP, NEL, em space, ideographic space, line separator are Go unicode.IsSpace.
        #expect(try Support.texts("a\u{A0}b\u{85}c\u{2003}d\u{3000}e\u{2028}f") == ["a", "b", "c", "d", "e", "f"])
        // Zero-width space and BOM are not whitespace.
        #expect(try Support.texts("a\u{200B}b c\u{FEFF}d") == ["a\u{200B}b", "c\u{FEFF}d"])
    }

    @Test func carriageReturnsAreIgnoredOutsideQuotes() throws {
        let tokens = try Support.lex("a\r\nb\rc\r\n")
        #expect(tokens.map(\.text) == ["a", "bc"])
        #expect(tokens.map(\.line) == [1, 2])
        #expect(try Support.texts("\"x\r\ny\"") == ["x\r\ny"])
    }

    @Test func leadingByteOrderMarkIsDropped() throws {
        #expect(try Support.texts("\u{FEFF}a b") == ["a", "b"])
        #expect(try Support.texts("\u{FEFF}\u{FEFF}a") == ["\u{FEFF}a"])
        #expect(try Support.lex("\u{FEFF}").isEmpty)
    }

    @Test func emptyInputIsEOFButBlankInputHasNoTokens() throws {
        #expect(throws: CaddyfileError(message: "EOF", style: .plain)) { try Support.lex("") }
        #expect(try Support.lex(" \n\t\n").isEmpty)
        #expect(try Support.lex("# only a comment").isEmpty)
    }

    @Test func invalidUTF8BecomesOneReplacementPerByte() throws {
        let tokens = try Lexer.tokenize([0x61, 0xFF, 0xE2, 0x82, 0x20, 0xC3, 0xA9], filename: "f")
        #expect(tokens.map(\.text) == ["a\u{FFFD}\u{FFFD}\u{FFFD}", "é"])
    }

    // MARK: comments

    @Test func commentsStartOnlyAtTokenStart() throws {
        #expect(try Support.texts("a#b c # d e\nf") == ["a#b", "c", "f"])
        #expect(try Support.texts("#x\n#y z\nw") == ["w"])
        #expect(try Support.texts("\"#q\" `#r` #s") == ["#q", "#r"])
    }

    @Test func escapedHashStillStartsCommentAndContinuesLine() throws {
        // Caddy quirk: "\#" starts a comment, and the pending escape turns the newline that ends
        // the comment into a line continuation.
        let tokens = try Support.lex("a \\#c\nb\nc")
        #expect(tokens.map(\.text) == ["a", "b", "c"])
        #expect(tokens.map(\.line) == [1, 1, 3])
    }

    // MARK: quotes

    @Test func doubleQuotesKeepSpacesAndOnlyUnescapeQuotes() throws {
        let tokens = try Support.lex(#"respond "a b" "say \"hi\"" "a\nb" "back\\slash" """#)
        #expect(tokens.map(\.text) == ["respond", "a b", #"say "hi""#, #"a\nb"#, #"back\\slash"#, ""])
        #expect(tokens.dropFirst().allSatisfy { $0.quote == .doubleQuotes })
    }

    @Test func doubleQuotesSpanLines() throws {
        let tokens = try Support.lex("respond \"Hello world\n\" 200\nlog")
        #expect(tokens.map(\.text) == ["respond", "Hello world\n", "200", "log"])
        #expect(tokens.map(\.line) == [1, 1, 2, 3])
        #expect(tokens[1].lineBreakCount == 1)
    }

    @Test func quotesInsideAWordAreLiteral() throws {
        #expect(try Support.texts(#"a"b c"d"#) == [#"a"b"#, #"c"d"#])
    }

    @Test func backticksAreRaw() throws {
        let tokens = try Support.lex(#"`{"a": "b\"c"}` `x\`"#)
        #expect(tokens.map(\.text) == [#"{"a": "b\"c"}"#, #"x\"#])
        #expect(tokens.allSatisfy { $0.quote == .backticks })
    }

    @Test func quotedBracesAreNotStructural() throws {
        let tokens = try Support.lex(#"{ "{" `}` }"#)
        #expect(tokens.map(\.isOpenBrace) == [true, false, false, false])
        #expect(tokens.map(\.isCloseBrace) == [false, false, false, true])
    }

    @Test func unterminatedQuoteAtEOFIsABareToken() throws {
        let tokens = try Support.lex("a \"bc d")
        #expect(tokens.map(\.text) == ["a", "bc d"])
        #expect(tokens[1].quote == .none)
        #expect(try Support.texts("a \"") == ["a"])
    }

    @Test func escapeBeforeQuoteAtTokenStartLeaksIntoTheQuote() throws {
        // Caddy quirk: the pending escape is applied to the first quoted character.
        #expect(try Support.texts(#"\"abc""#) == [#"\abc"#])
    }

    // MARK: escapes and continuation

    @Test func backslashIsKeptBeforeOrdinaryCharacters() throws {
        #expect(try Support.texts(#"a\b \{x\} c\\d"#) == [#"a\b"#, #"\{x\}"#, #"c\\d"#])
    }

    @Test func backslashNewlineContinuesTheLine() throws {
        let tokens = try Support.lex("reverse_proxy a \\\n\tb \\\r\n\tc\nlog")
        #expect(tokens.map(\.text) == ["reverse_proxy", "a", "b", "c", "log"])
        #expect(tokens.map(\.line) == [1, 1, 1, 1, 4])
    }

    @Test func backslashSpaceDoesNotEscapeTheSpace() throws {
        // The escape stays pending across the space and lands on the next character.
        #expect(try Support.texts(#"a \ b"#) == ["a", #"\b"#])
    }

    // MARK: heredocs

    @Test func heredocStripsClosingMarkerIndentation() throws {
        let input = "respond <<EOF\n\t\t<p>\n\t\t\tx\n\n\t\t</p>\n\t\tEOF 201\nlog"
        let tokens = try Support.lex(input)
        #expect(tokens.map(\.text) == ["respond", "<p>\n\tx\n\n</p>", "201", "log"])
        #expect(tokens[1].quote == .heredoc(marker: "EOF"))
        #expect(tokens[1].heredocMarker == "EOF")
        #expect(tokens.map(\.line) == [1, 1, 6, 7])
        #expect(tokens[1].lineBreakCount == 5)
        #expect(!tokens[1].isFollowedOnNewLine(by: tokens[2]))
        #expect(tokens[2].isFollowedOnNewLine(by: tokens[3]))
    }

    @Test func heredocMarkersMayUseDashesAndUnderscores() throws {
        let tokens = try Support.lex("a <<my-END_2\nx\nmy-END_2")
        #expect(tokens.map(\.text) == ["a", "x"])
        #expect(tokens[1].quote == .heredoc(marker: "my-END_2"))
    }

    @Test func emptyHeredoc() throws {
        let tokens = try Support.lex("a <<EOF\nEOF\nb")
        #expect(tokens.map(\.text) == ["a", "", "b"])
        #expect(tokens.map(\.line) == [1, 1, 3])
    }

    @Test func heredocDropsCarriageReturns() throws {
        #expect(try Support.texts("a <<EOF\r\n  x\r\n\r\n  y\r\n  EOF\r\n") == ["a", "x\n\ny"])
    }

    @Test func heredocEndsAtTheFirstMarkerOccurrence() throws {
        // The closing marker is found anywhere, even inside a line; what precedes it on its line
        // is the indentation to strip.
        #expect(try Support.texts("a <<END\nfooEND bar") == ["a", "", "bar"])
        #expect(try Support.texts("a <<END\nfoox\nfooEND") == ["a", "x"])
    }

    @Test func heredocMarkerNeedsANewline() throws {
        #expect(try Support.texts("a <<EOF b") == ["a", "<<EOF", "b"])
        #expect(try Support.texts("a << b") == ["a", "<<", "b"])
        #expect(try Support.texts("a <<EOF") == ["a", "<<EOF"])
    }

    @Test func escapedHeredocIsAPlainToken() throws {
        #expect(try Support.texts("a \\<<EOF\nb") == ["a", "<<EOF", "b"])
    }

    @Test func heredocErrors() {
        let cases: [(String, String)] = [
            (
                "a <<EOF\nx\n",
                "incomplete heredoc <<EOF on line #3, expected ending marker EOF"
            ),
            (
                "a <<EOF\n\tx\n  EOF",
                "mismatched leading whitespace in heredoc <<EOF on line #2 [\tx], expected whitespace [  ] to match the closing marker"
            ),
            (
                "a\nb <<E.F\nx\nE.F",
                "heredoc marker on line #2 must contain only alphanumeric characters, dashes and underscores; got 'E.F'"
            ),
            ("a <<<EOF\nEOF", "too many '<' for heredoc on line #1; only use two, for example <<END"),
            (
                "a <<\nx",
                "missing opening heredoc marker on line #1; must contain only alphanumeric characters, dashes and underscores; got empty string"
            ),
            // A tab after the marker is part of the marker.
            (
                "a <<EOF\t\nx\nEOF",
                "heredoc marker on line #1 must contain only alphanumeric characters, dashes and underscores; got 'EOF\t'"
            ),
        ]
        for (input, message) in cases {
            #expect(throws: CaddyfileError(message: message, style: .plain), "\(input)") {
                try Support.lex(input)
            }
        }
    }

    @Test func unterminatedHeredocWithNoContentIsSilentlyDropped() throws {
        // Caddy quirk: nothing was collected after the opening line, so EOF ends quietly.
        #expect(try Support.texts("a <<EOF\n") == ["a"])
    }

    // MARK: token helpers

    @Test func tokensFromOtherFilesOrImportChainsStartNewLines() {
        let a = Token(file: "A", line: 1, text: "x")
        #expect(!a.isFollowedOnNewLine(by: Token(file: "A", line: 1, text: "y")))
        #expect(a.isFollowedOnNewLine(by: Token(file: "B", line: 1, text: "y")))
        #expect(a.isFollowedOnNewLine(by: Token(file: "A", line: 1, text: "y", imports: ["i"])))
        #expect(a.isFollowedOnNewLine(by: Token(file: "A", line: 2, text: "y")))
        let multi = Token(file: "A", line: 1, text: "p\nq", quote: .doubleQuotes)
        #expect(!multi.isFollowedOnNewLine(by: Token(file: "A", line: 2, text: "y")))
        #expect(multi.isFollowedOnNewLine(by: Token(file: "A", line: 3, text: "y")))
    }

    @Test func rawTextPutsQuotesBack() {
        #expect(Token(text: "a b", quote: .doubleQuotes).rawText == "\"a b\"")
        #expect(Token(text: "a", quote: .backticks).rawText == "`a`")
        #expect(Token(text: "h", quote: .heredoc(marker: "E")).rawText == "h")
        #expect(Token(text: "w").rawText == "w")
        #expect(QuoteStyle.heredoc(marker: "E").character == "<")
    }
}

@Suite("Environment substitution")
struct EnvironmentSubstitutionTests {
    func apply(_ text: String, _ env: [String: String]) -> String {
        String(decoding: EnvironmentSubstitution.apply(Array(text.utf8), environment: env), as: UTF8.self)
    }

    @Test func substitutesValuesAndDefaults() {
        let env = ["HOST": "example.com", "EMPTY": ""]
        #expect(apply("{$HOST} {$PORT:8080} {$MISSING}|", env) == "example.com 8080 |")
        #expect(apply("{$EMPTY:default}", env) == "")
        #expect(apply("{$HOST:a:b} {$X:a:b}", env) == "example.com a:b")
        #expect(apply(":{$X:}", env) == ":")
    }

    @Test func leavesRuntimePlaceholdersAndEmptyNamesAlone() {
        #expect(apply("{env.HOME} {$} {host}", ["HOME": "/root"]) == "{env.HOME} {$} {host}")
    }

    @Test func isOneLevelDeep() {
        #expect(apply("{$A}", ["A": "{$B}", "B": "no"]) == "{$B}")
    }

    @Test func stopsAtAnUnclosedSpan() {
        #expect(apply("{$A} {$B {$A", ["A": "x"]) == "x {$B {$A")
        // The name runs to the next "}", whatever lies between.
        #expect(apply("{$A} {$B {$A}", ["A": "x"]) == "x ")
    }

    @Test func appliesEverywhereEvenInQuotesAndComments() {
        #expect(apply("\"{$A}\" # {$A}", ["A": "x"]) == "\"x\" # x")
    }

    @Test func namesMaySpanAnything() {
        #expect(apply("{$A B}{$\n}", ["A B": "1", "\n": "2"]) == "12")
    }

    @Test func valuesCanAddTokensAndLines() throws {
        let parser = CaddyfileParser(environment: ["M": "respond x\nlog"])
        let tokens = try parser.tokenize(Array("a {\n\t{$M}\n\tz\n}".utf8), filename: "C")
        #expect(tokens.map(\.text) == ["a", "{", "respond", "x", "log", "z", "}"])
        #expect(tokens.map(\.line) == [1, 1, 2, 2, 3, 4, 5])
    }

    @Test func processEnvironmentIsReadable() {
        let env = EnvironmentSubstitution.processEnvironment()
        #expect(env["PATH"] != nil)
    }
}

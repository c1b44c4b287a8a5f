import Testing

@testable import Caddyfile

@Suite("Parser structure")
struct ParserStructureTests {
    @Test func seedExampleOne() throws {
        let input =
            "{\n\tadmin unix//run/admin.sock\n}\n\nhttp://localhost {\n\tbind fd/3 {\n\t\tprotocols h1\n\t}\n\tlog\n\trespond \"Hello world\n\"\n}\n"
        let blocks = try Support.parse(input)
        #expect(blocks.count == 2)
        #expect(blocks[0].isGlobalOptions && blocks[0].hasBraces)
        #expect(
            Support.shape(blocks) == [
                [[], ["admin", "unix//run/admin.sock"]],
                [
                    ["http://localhost"], ["bind", "fd/3", "{", "protocols", "h1", "}"], ["log"],
                    ["respond", "Hello world\n"],
                ],
            ])
        let respond = blocks[1].segments[2]
        #expect(respond.directive == "respond")
        #expect(respond[1].quote == .doubleQuotes && respond[1].line == 10)
        #expect(!blocks[1].isGlobalOptions && !blocks[1].isNamedRoute)
    }

    @Test func addressListsContinueAfterATrailingComma() throws {
        let blocks = try Support.parse("a.com, b.com,\n\tc.com d.com ,\ne.com {\n}\n")
        #expect(blocks.map(\.keyTexts) == [["a.com", "b.com", "c.com", "d.com", "e.com"]])
        #expect(blocks[0].keys.map(\.line) == [1, 1, 2, 2, 3])
    }

    @Test func aSingleSiteMayOmitBraces() throws {
        let blocks = try Support.parse("localhost\n\nrespond hi\nlog\n")
        #expect(Support.shape(blocks) == [[["localhost"], ["respond", "hi"], ["log"]]])
        #expect(!blocks[0].hasBraces)
    }

    @Test func aFileWithOnlyAddressesIsOneBlockWithoutSegments() throws {
        let blocks = try Support.parse("localhost example.com\n")
        #expect(Support.shape(blocks) == [[["localhost", "example.com"]]])
    }

    @Test func emptyBlocksAreDropped() throws {
        #expect(try Support.parse("{\n}\n").isEmpty)
        let blocks = try Support.parse("{\n}\na {\n}\n")
        #expect(Support.shape(blocks) == [[["a"]]])
    }

    @Test func aLaterKeylessBlockIsStillReturned() throws {
        // Caddy refuses it later, while setting up the HTTP app.
        let blocks = try Support.parse("a {\n}\n{\n\tdebug\n}\n")
        #expect(blocks.map(\.isGlobalOptions) == [false, true])
        #expect(
            CaddyfileError.globalOptionsNotFirst().description
                == "server block without any key is global configuration, and if used, it must be first")
    }

    @Test func nestedBlocksStayInTheirSegment() throws {
        let blocks = try Support.parse("a {\n\troute {\n\t\thandle /x {\n\t\t\trespond x\n\t\t}\n\t}\n\tlog\n}\n")
        #expect(
            Support.shape(blocks) == [
                [
                    ["a"], ["route", "{", "handle", "/x", "{", "respond", "x", "}", "}"], ["log"],
                ]
            ])
    }

    @Test func aCloseBraceMayFollowTokensInsideANestedBlock() throws {
        let blocks = try Support.parse("a {\n\tlog {\n\t\toutput stdout }\n\trespond ok\n}\n")
        #expect(Support.shape(blocks) == [[["a"], ["log", "{", "output", "stdout", "}"], ["respond", "ok"]]])
    }

    @Test func quotedBracesAreArguments() throws {
        let blocks = try Support.parse("a {\n\trespond \"{\" \"}\" \"{}\" {} x\n}\n")
        #expect(Support.shape(blocks) == [[["a"], ["respond", "{", "}", "{}", "{}", "x"]]])
    }

    @Test func snippetsAreNotBlocks() throws {
        let blocks = try Support.parse("(s) {\n\tlog\n}\na {\n\timport s\n}\n")
        #expect(Support.shape(blocks) == [[["a"], ["log"]]])
        let log = blocks[0].segments[0][0]
        #expect(log.snippetName == "s")
        #expect(log.imports == ["Caddyfile:5 (import s)"])
        #expect(log.line == 2)
    }

    @Test func namedRoutesAreKeptWhole() throws {
        let blocks = try Support.parse("&(app) {\n\treverse_proxy app:80\n}\na {\n\tinvoke app\n}\n")
        #expect(blocks[0].isNamedRoute && !blocks[1].isNamedRoute)
        #expect(
            Support.shape(blocks) == [
                [["app"], ["app", "{", "reverse_proxy", "app:80", "}"]],
                [["a"], ["invoke", "app"]],
            ])
        // The name token stands where the opening brace was.
        #expect(blocks[0].keys[0].line == 1)
    }

    @Test func environmentVariablesAreSubstitutedBeforeParsing() throws {
        let blocks = try Support.parse(
            "{$SITE} {\n\trespond {$BODY:none}\n\t{$DIRECTIVES}\n}\n",
            environment: ["SITE": "a.com b.com", "DIRECTIVES": "log\nencode gzip"])
        #expect(Support.shape(blocks) == [[["a.com", "b.com"], ["respond", "none"], ["log"], ["encode", "gzip"]]])
    }

    @Test func importWarningsAreReported() throws {
        let parser = CaddyfileParser(
            environment: [:],
            importResolver: MemoryImportResolver(files: ["conf.d/empty.caddy": " \n"]))
        let result = try parser.parseWithWarnings(
            Array("a {\n\timport conf.d/*.none\n\timport conf.d/empty.caddy\n}\n".utf8), filename: "Caddyfile")
        #expect(
            result.warnings.map(\.description) == [
                "No files matching import glob pattern: conf.d/*.none",
                "Import file is empty: /etc/caddy/conf.d/empty.caddy",
            ])
        #expect(Support.shape(result.blocks) == [[["a"]]])
    }

    @Test func dispenseDirectiveConcatenatesSegments() throws {
        let blocks = try Support.parse("a {\n\tlog x\n\trespond 1\n\tlog y {\n\t\tz\n\t}\n}\n")
        var d = blocks[0].dispenseDirective("log")
        var seen: [String] = []
        while d.next() { seen.append(d.val) }
        #expect(seen == ["log", "x", "log", "y", "{", "z", "}"])
    }
}

@Suite("Parser errors")
struct ParserErrorTests {
    /// Each input and the exact error Caddy gives for it (file name `Caddyfile`).
    static let cases: [(String, String)] = [
        ("a {\n\tbind fd/3 { protocols h1 }\n}\n", "Unexpected next token after '{' on same line, at Caddyfile:2"),
        (
            "a {\n\tlog\n\t{\n\t}\n}\n",
            "Unexpected '{' on a new line; did you mean to place the '{' on the previous line?, at Caddyfile:3"
        ),
        ("a {\n\tlog {}\n}\n", "Unexpected '{}' at end of line, at Caddyfile:2"),
        ("a {\n\trespond x }\n}\n", "Unexpected '}' because no matching opening brace, at Caddyfile:2"),
        ("a {\n\trespond x\n", "syntax error: unexpected token 'x', expecting '}', at Caddyfile:2 import chain: ['']"),
        ("(s)\nlog\n", "syntax error: unexpected token 'log', expecting '{', at Caddyfile:2 import chain: ['']"),
        ("a {\n\tlog {\n\t\tx\n", "unexpected EOF, at Caddyfile:3"),
        (
            "@m path /x\n",
            "request matchers may not be defined globally, they must be in a site block; found @m, at Caddyfile:1"
        ),
        ("a, {\n}\n", "Expected another address but had '{' - check for extra comma, at Caddyfile:1"),
        (
            "a{\n}\n",
            "Site addresses cannot end with a curly brace: 'a{' - put a space between the token and the brace, at Caddyfile:1"
        ),
        (
            "a,b {\n}\n",
            "Site addresses cannot contain a comma ',': 'a,b' - put a space after the comma to separate site addresses, at Caddyfile:1"
        ),
        ("a,\n", "unexpected EOF, at Caddyfile:1"),
        ("(s) {\n}\n(s) {\n}\n", "redeclaration of previously declared snippet s, at Caddyfile:3"),
        ("a {\n\timport later\n}\n(later) {\n}\n", "File to import not found: later, at Caddyfile:2"),
        ("a {\n\timport \"\"\n}\n", "Import requires a non-empty filepath, at Caddyfile:2"),
        ("a {\n\timport\n}\n", "wrong argument count or unexpected line ending after 'import', at Caddyfile:2"),
        ("(s) {\n}\na {\n\timport s {\n\t\t{\n\t\t}\n\t}\n}\n", "anonymous blocks are not supported, at Caddyfile:6"),
        ("(s) {\n\timport s\n}\na {\n\timport s\n}\n", "a cycle of imports exists between Caddyfile:s and Caddyfile:s"),
        (
            "(s) {\n\tlog {}\n}\na {\n\timport s\n}\n",
            "Unexpected '{}' at end of line, at Caddyfile:2 import chain ['Caddyfile:5 (import s)']"
        ),
        (
            "(c)\nimport c\n",
            "global options block must appear before import directives; move the global options block to the top of the Caddyfile, at Caddyfile:2"
        ),
        ("", "EOF"),
        ("a {\n\trespond <<EOF\n\tx\n}\n", "incomplete heredoc <<EOF on line #5, expected ending marker EOF"),
    ]

    @Test(arguments: 0..<cases.count)
    func errorText(_ index: Int) {
        let (input, expected) = Self.cases[index]
        #expect(Support.parseError(input) == expected)
    }

    @Test func snippetTokensOnlyRecordTheImportThatBroughtThem() {
        // A snippet's tokens keep the chain they had when defined (none) plus the import that
        // expanded them; the outer import is not listed (as in Caddy).
        let input = "(inner) {\n\tlog {}\n}\n(outer) {\n\timport inner\n}\na {\n\timport outer\n}\n"
        #expect(
            Support.parseError(input)
                == "Unexpected '{}' at end of line, at Caddyfile:2 import chain ['Caddyfile:5 (import inner)']")
    }

    @Test func syntaxErrorsShowTheImportChainWithAColon() {
        let input = "(s) {\n\troute {\n}\na {\n\timport s\n}\n"
        #expect(
            Support.parseError(input)
                == "syntax error: unexpected token '}', expecting '}', at Caddyfile:6 import chain: ['']")
    }

    @Test func errorFieldsAreExposed() throws {
        do {
            _ = try Support.parse("(s) {\n\tlog {}\n}\na {\n\timport s\n}\n")
            Issue.record("expected an error")
        } catch let error as CaddyfileError {
            #expect(error.message == "Unexpected '{}' at end of line")
            #expect(error.file == "Caddyfile" && error.line == 2)
            #expect(error.importChain == ["Caddyfile:5 (import s)"])
            #expect(error.style == .located)
        } catch {
            Issue.record("unexpected error type \(error)")
        }
    }

    @Test func errorDescriptionFormats() {
        let located = CaddyfileError(message: "m", file: "F", line: 3)
        #expect(located.description == "m, at F:3")
        let chained = CaddyfileError(message: "m", file: "F", line: 3, importChain: ["A:1 (import)", "B:2 (import s)"])
        #expect(chained.description == "m, at F:3 import chain ['A:1 (import)','B:2 (import s)']")
        let syntax = CaddyfileError(message: "syntax error: x", file: "F", line: 3, style: .syntax)
        #expect(syntax.description == "syntax error: x, at F:3 import chain: ['']")
        #expect(CaddyfileError(message: "plain", style: .plain).description == "plain")
    }
}

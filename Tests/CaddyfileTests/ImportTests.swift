import Testing

@testable import Caddyfile

@Suite("Imports")
struct ImportTests {
    @Test func snippetArgumentsArePlacedAndExpanded() throws {
        let input = """
            (s) {
            \trespond "{args[0]} {args[1]}" {args[2]}
            \theader A {args[:]}
            \theader B {args[1:]} / {args[:1]} / {args[0:2]}
            \theader C {args[5]} {args[5:]} x{args[0]}y {args.1} {args[x]} {args[]} {args[0:1]}z
            }
            a {
            \timport s Hello World 201
            }
            """
        let blocks = try Support.parse(input)
        #expect(
            Support.shape(blocks) == [
                [
                    ["a"],
                    ["respond", "Hello World", "201"],
                    ["header", "A", "Hello", "World", "201"],
                    ["header", "B", "World", "201", "/", "Hello", "/", "Hello", "World"],
                    [
                        "header", "C", "{args[5]}", "{args[5:]}", "xHelloy", "World", "{args[x]}", "{args[]}",
                        "{args[0:1]}z",
                    ],
                ]
            ])
    }

    @Test func blockArgumentsFillBlockPlaceholders() throws {
        let input = """
            (wrap) {
            \troute {
            \t\t{block}
            \t}
            \thandle {
            \t\t{blocks.first}
            \t}
            \t{blocks.missing}
            }
            a {
            \timport wrap {
            \t\tfirst x {
            \t\t\tinner
            \t\t}
            \t}
            }
            """
        let blocks = try Support.parse(input)
        #expect(
            Support.shape(blocks) == [
                [
                    ["a"],
                    ["route", "{", "first", "x", "{", "inner", "}", "}"],
                    ["handle", "{", "x", "inner", "}"],
                ]
            ])
    }

    @Test func topLevelImportCopiesSnippetDefinitionsVerbatim() throws {
        let input = """
            (site) {
            \t{args[0]} {
            \t\trespond {args[1]}
            \t}
            \t(made) {
            \t\trespond {args[0]}
            \t}
            }
            import site a.com A
            b.com {
            \timport made B
            }
            """
        let blocks = try Support.parse(input)
        // The snippet defined inside the imported tokens keeps its own {args[0]}, which the
        // later `import made B` fills.
        #expect(Support.shape(blocks) == [[["a.com"], ["respond", "A"]], [["b.com"], ["respond", "B"]]])
    }

    @Test func argumentReplacementUnescapesBracesInImportedTokens() throws {
        let input = "(e) {\n\trespond \\{x\\} {args[0]} a\\{\n}\na {\n\timport e A\n\trespond \\{y\\}\n}\n"
        let blocks = try Support.parse(input)
        // Caddy's replacer drops the backslash of \{ and \} in imported tokens that contain a
        // brace; tokens outside the import keep theirs.
        #expect(Support.shape(blocks) == [[["a"], ["respond", "{x}", "A", "a{"], ["respond", "\\{y\\}"]]])
    }

    @Test func anUnescapedImportedBraceBecomesStructural() throws {
        // Caddy quirk: a lone `\{` in a snippet turns into a block-opening `{` once imported, and
        // the site's closing brace then closes both.
        let input = "(e) {\n\trespond \\{\n}\na {\n\timport e\n\tlog\n}\n"
        let blocks = try Support.parse(input)
        #expect(Support.shape(blocks) == [[["a"], ["respond", "{", "log", "}"]]])
    }

    @Test func replaceKnownEdgeCases() {
        let r = ImportArguments(args: ["A", "B"])
        #expect(r.replaceKnown("{args[0]}{args[1]}") == "AB")
        #expect(r.replaceKnown("{foo{args[0]}}") == "{fooA}")
        #expect(r.replaceKnown("{args[1]\\}x}") == "{args[1]}x}")
        #expect(r.replaceKnown("{args[-1]}") == "{args[-1]}")
        #expect(r.replaceKnown("{args[+1]}") == "B")
        #expect(r.replaceKnown("{args[01]}") == "B")
        #expect(r.replaceKnown("{args[0]]}") == "{args[0]]}")
        #expect(r.replaceKnown("{xargs[0]}") == "{xargs[0]}")
        #expect(r.replaceKnown("{args[1:]}x") == "{args[1:]}x")
        #expect(r.replaceKnown("no braces \\ here") == "no braces \\ here")
        #expect(r.replaceKnown(String(repeating: "{", count: 150)) == "")
        #expect(r.replaceKnown(String(repeating: "{", count: 100)) == String(repeating: "{", count: 100))
    }

    @Test func variadicRanges() {
        let r = ImportArguments(args: ["a", "b", "c"])
        #expect(r.variadicRange("{args[:]}") == 0..<3)
        #expect(r.variadicRange("{args[1:]}") == 1..<3)
        #expect(r.variadicRange("{args[:2]}") == 0..<2)
        #expect(r.variadicRange("{args[3:3]}") == 3..<3)
        #expect(r.variadicRange("{args[2:1]}") == nil)
        #expect(r.variadicRange("{args[0:4]}") == nil)
        #expect(r.variadicRange("{args[-1:]}") == nil)
        #expect(r.variadicRange("{args[0]}") == nil)
        #expect(r.variadicRange("x{args[:]}") == nil)
        #expect(r.variadicRange("{args[}:{]}") == nil)
    }

    @Test func fileImportsAreRelativeToTheImportingFile() throws {
        let files = [
            "conf/site.caddy": "import parts/common.caddy {args[0]}\n",
            "conf/parts/common.caddy": "respond {args[0]}\n",
        ]
        let blocks = try Support.parse("a {\n\timport conf/site.caddy X\n}\n", files: files)
        #expect(Support.shape(blocks) == [[["a"], ["respond", "X"]]])
        let token = blocks[0].segments[0][0]
        #expect(token.file == "/etc/caddy/conf/parts/common.caddy")
        #expect(token.line == 1)
        #expect(token.imports == ["/etc/caddy/conf/site.caddy:1 (import)"])
    }

    @Test func globsAreSortedAndStarSkipsHiddenFiles() throws {
        let files = [
            "d/b.caddy": "b\n", "d/a.caddy": "a\n", "d/.h.caddy": "hidden\n", "d/c.txt": "c\n",
            "/abs/x.caddy": "abs\n",
        ]
        #expect(
            Support.shape(try Support.parse("s {\n\timport d/*\n}\n", files: files)) == [[["s"], ["a"], ["b"], ["c"]]])
        #expect(
            Support.shape(try Support.parse("s {\n\timport d/*.caddy\n}\n", files: files)) == [[["s"], ["a"], ["b"]]])
        // Only a pattern whose last element starts with "*" skips dot files.
        #expect(
            Support.shape(try Support.parse("s {\n\timport d/?h.caddy\n}\n", files: files)) == [[["s"], ["hidden"]]])
        #expect(Support.shape(try Support.parse("s {\n\timport d/.*\n}\n", files: files)) == [[["s"], ["hidden"]]])
        #expect(
            Support.shape(try Support.parse("s {\n\timport /abs/x.caddy\n}\n", files: files)) == [[["s"], ["abs"]]])
    }

    @Test func fileImportErrors() {
        let files = ["d/sub/x": "x\n", "loop/a": "import b\n", "loop/b": "import a\n", "bad": "x \"\n<<E\n"]
        #expect(
            Support.parseError("s {\n\timport d/*\n}\n", files: files)
                == "Could not import /etc/caddy/d/sub: is a directory, at Caddyfile:2")
        #expect(
            Support.parseError("import loop/a\n", files: files)
                == "a cycle of imports exists between /etc/caddy/loop/b and /etc/caddy/loop/a")
        #expect(
            Support.parseError("s {\n\timport *x*\n}\n", files: files)
                == "Glob pattern may only contain one wildcard (*), but has others: /etc/caddy/*x*, at Caddyfile:2")
        #expect(
            Support.parseError("s {\n\timport a?b?\n}\n", files: files)
                == "Glob pattern may only contain one wildcard (*), but has others: /etc/caddy/a?b?, at Caddyfile:2")
        #expect(
            Support.parseError("s {\n\timport [ab]\n}\n", files: files)
                == "Glob pattern may only contain one wildcard (*), but has others: /etc/caddy/[ab], at Caddyfile:2")
        #expect(
            Support.parseError("s {\n\timport x[\n}\n", files: files)
                == "Failed to use import pattern x[: syntax error in pattern, at Caddyfile:2")
        #expect(
            Support.parseError("s {\n\timport nothere a b\n}\n", files: files)
                == "File to import not found: nothere, at Caddyfile:2")
    }

    @Test func fileImportedSnippetsWorkAcrossFiles() throws {
        let files = ["snips.caddy": "(s) {\n\trespond {args[0]}\n}\n"]
        let blocks = try Support.parse("import snips.caddy\na {\n\timport s Q\n}\n", files: files)
        #expect(Support.shape(blocks) == [[["a"], ["respond", "Q"]]])
        let token = blocks[0].segments[0][0]
        #expect(token.file == "/etc/caddy/snips.caddy" && token.line == 2)
        #expect(token.imports == ["Caddyfile:1 (import)", "Caddyfile:3 (import s)"])
    }

    @Test func fileImportsAreRefusedByNoFileResolver() throws {
        let parser = CaddyfileParser(environment: [:], importResolver: NoFileImportResolver())
        #expect(throws: CaddyfileError(message: "File to import not found: /etc/passwd", file: "C", line: 2)) {
            try parser.parse(Array("a {\n\timport /etc/passwd\n}\n".utf8), filename: "C")
        }
        // Snippets still work.
        let blocks = try parser.parse(Array("(s) {\n\tlog\n}\na {\n\timport s\n}\n".utf8), filename: "C")
        #expect(Support.shape(blocks) == [[["a"], ["log"]]])
    }

    @Test func exponentialSnippetExpansionIsBounded() {
        var input = "(s0) {\n\tx x x x\n}\n"
        for i in 1...30 {
            input += "(s\(i)) {\n\timport s\(i - 1)\n\timport s\(i - 1)\n}\n"
        }
        input += "a {\n\timport s30\n}\n"
        let parser = CaddyfileParser(
            environment: [:], importResolver: NoFileImportResolver(), maxImportedTokens: 10_000)
        #expect(throws: CaddyfileError.self) {
            try parser.parse(Array(input.utf8), filename: "C")
        }
    }

    @Test func localResolverReadsRealFiles() throws {
        let dir = Support.goldenDirectory.appendingPathComponent("parse").path
        let parser = CaddyfileParser(environment: [:], importResolver: LocalImportResolver(workingDirectory: dir))
        let blocks = try parser.parse(Array("a {\n\timport imports/common.caddy V\n}\n".utf8), filename: "Caddyfile")
        #expect(Support.shape(blocks) == [[["a"], ["header", "X-Common", "V"], ["log"]]])
        #expect(blocks[0].segments[0][0].file == dir + "/imports/common.caddy")
    }
}

@Suite("Go path functions")
struct GoPathTests {
    @Test func clean() {
        let cases: [(String, String)] = [
            ("", "."), ("/", "/"), ("a/b/../c", "a/c"), ("/../x", "/x"), ("../../a", "../../a"),
            ("a//b/./c/", "a/b/c"), ("a/..", "."), ("/a/b/..", "/a"), ("./", "."),
        ]
        for (input, output) in cases { #expect(GoPath.clean(input) == output, "\(input)") }
        #expect(GoPath.join("/etc/caddy", "../x") == "/etc/x")
        #expect(GoPath.join("", "") == "")
        #expect(GoPath.dir("/etc/caddy/Caddyfile") == "/etc/caddy")
        #expect(GoPath.dir("Caddyfile") == ".")
    }

    @Test func match() throws {
        #expect(try GoPath.match("*.caddy", "a.caddy"))
        #expect(try !GoPath.match("*.caddy", "a/b.caddy"))
        #expect(try GoPath.match("a?c", "abc"))
        #expect(try GoPath.match("a?c", "aéc"))
        #expect(try !GoPath.match("a?c", "a/c"))
        #expect(try GoPath.match("[a-c]x", "bx"))
        #expect(try !GoPath.match("[^a-c]x", "bx"))
        #expect(try GoPath.match("\\*", "*"))
        #expect(try GoPath.match("*", ".hidden"))
        #expect(throws: GoPathError.self) { try GoPath.match("[", "x") }
        #expect(throws: GoPathError.self) { try GoPath.match("a\\", "a") }
        #expect(throws: GoPathError.self) { try GoPath.match("[]", "x") }
    }
}

import Testing

@testable import Caddyfile

/// A reference wrapper so that `#expect` can call the dispenser's mutating methods.
final class Cursor {
    var d: Dispenser
    init(_ d: Dispenser) { self.d = d }
    convenience init(_ text: String) throws { self.init(try Dispenser(testInput: text)) }
    convenience init(_ tokens: [Token]) { self.init(Dispenser(tokens)) }

    var val: String { d.val }
    var valRaw: String { d.valRaw }
    var line: Int { d.line }
    var file: String { d.file }
    var token: Token { d.token }
    var nesting: Int { d.nesting }
    var cursor: Int { d.cursor }
    var scalarVal: ScalarValue? { d.scalarVal }
    var isNewLine: Bool { d.isNewLine }
    var isNextOnNewLine: Bool { d.isNextOnNewLine }
    @discardableResult func next() -> Bool { d.next() }
    @discardableResult func prev() -> Bool { d.prev() }
    func nextArg() -> Bool { d.nextArg() }
    func nextLine() -> Bool { d.nextLine() }
    func nextBlock(_ n: Int) -> Bool { d.nextBlock(n) }
    func reset() { d.reset() }
    func remainingArgs() -> [String] { d.remainingArgs() }
    func remainingArgsRaw() -> [String] { d.remainingArgsRaw() }
    func remainingArgsAsTokens() -> [Token] { d.remainingArgsAsTokens() }
    func countRemainingArgs() -> Int { d.countRemainingArgs() }
    func args(count: Int) -> [String]? { d.args(count: count) }
    func allArgs(count: Int) -> [String]? { d.allArgs(count: count) }
    func args(_ a: inout String) -> Bool { d.args(&a) }
    func args(_ a: inout String, _ b: inout String) -> Bool { d.args(&a, &b) }
    func args(_ a: inout String, _ b: inout String, _ c: inout String) -> Bool { d.args(&a, &b, &c) }
    func nextSegment() -> Segment { d.nextSegment() }
    func newFromNextSegment() -> Cursor { Cursor(d.newFromNextSegment()) }
    func delete() -> [Token] { d.delete() }
    func deleteN(_ n: Int) -> [Token] { d.deleteN(n) }
    func err(_ m: String) -> CaddyfileError { d.err(m) }
    func argErr() -> CaddyfileError { d.argErr() }
    func syntaxErr(_ e: String) -> CaddyfileError { d.syntaxErr(e) }
    func eofErr() -> CaddyfileError { d.eofErr() }
    func wrapErr(_ e: any Error) -> CaddyfileError { d.wrapErr(e) }
}

@Suite("Dispenser")
struct DispenserTests {
    func dispenser(_ text: String) throws -> Cursor {
        try Cursor(text)
    }

    @Test func emptyDispenserIsSafe() {
        let d = Cursor([Token]())
        #expect(d.val == "" && d.line == 0 && d.file == "" && d.valRaw == "")
        #expect(!d.next() && !d.prev())
        // Caddy quirk kept: from before the first token, nextArg/nextLine always step onto
        // "the first token", even when there is none; every accessor stays safe.
        #expect(d.nextArg() && d.val == "" && d.cursor == 0)
        #expect(!d.nextArg() && !d.nextLine())
        d.reset()
        #expect(d.nextLine() && !d.nextLine())
        d.reset()
        #expect(!d.nextBlock(0))
        #expect(d.remainingArgs() == [""])  // the same quirk, as in Caddy
        #expect(d.remainingArgs().isEmpty && d.countRemainingArgs() == 0)
        #expect(d.scalarVal == nil)
        #expect(d.delete().isEmpty && d.deleteN(3).isEmpty)
        #expect(d.nextSegment().tokens.map(\.text) == [""])
        #expect(d.eofErr().description == "unexpected EOF, at :0")
    }

    @Test func nextPrevAndPosition() throws {
        let d = try dispenser("dir1 arg1\ndir2")
        #expect(d.next() && d.val == "dir1" && d.line == 1 && d.file == "Testfile")
        #expect(d.next() && d.val == "arg1")
        #expect(d.next() && d.val == "dir2" && d.line == 2)
        #expect(!d.next() && d.val == "dir2")
        #expect(d.prev() && d.val == "arg1")
        #expect(d.prev() && !d.prev() && d.cursor == -1)
        #expect(d.next() && d.val == "dir1")
    }

    @Test func nextArgStopsAtLineEndsAndBlockOpenings() throws {
        let d = try dispenser("dir a b {\n\tsub \"{\" x\n}\nnext")
        #expect(d.next() && d.val == "dir")
        #expect(d.nextArg() && d.val == "a")
        #expect(d.nextArg() && d.val == "b")
        #expect(!d.nextArg() && d.val == "b")  // "{" is not an argument
        #expect(d.next() && d.val == "{")
        #expect(d.next() && d.val == "sub")
        #expect(d.nextArg() && d.val == "{" && d.token.quote == .doubleQuotes)  // quoted: an argument
        #expect(d.nextArg() && d.val == "x")
        #expect(!d.nextArg())
    }

    @Test func nextLine() throws {
        let d = try dispenser("a b\nc")
        #expect(d.nextLine() && d.val == "a")
        #expect(!d.nextLine() && d.val == "a")
        #expect(d.next() && d.val == "b")
        #expect(d.nextLine() && d.val == "c")
        #expect(!d.nextLine())
    }

    @Test func nextBlockIteratesOneBlock() throws {
        let d = try dispenser("dir {\n\ta 1\n\tb {\n\t\tc\n\t}\n}\nafter")
        #expect(d.next())
        var seen: [String] = []
        let nesting = d.nesting
        while d.nextBlock(nesting) { seen.append(d.val) }
        #expect(seen == ["a", "1", "b", "{", "c", "}"])
        #expect(d.nesting == 0 && d.val == "}")
        #expect(d.next() && d.val == "after")
    }

    @Test func nextBlockReadsDirectivesWithArgs() throws {
        let d = try dispenser("dir {\n\ta 1 2\n\tb\n}")
        #expect(d.next())
        var lines: [[String]] = []
        while d.nextBlock(0) {
            lines.append([d.val] + d.remainingArgs())
        }
        #expect(lines == [["a", "1", "2"], ["b"]])
    }

    @Test func nextBlockWithoutABlock() throws {
        let d = try dispenser("dir a\nother {\n}")
        #expect(d.next() && d.nextArg())
        #expect(!d.nextBlock(0) && d.val == "a")  // the brace is on another line
        let e = try dispenser("dir {\n}\nx")
        #expect(e.next() && !e.nextBlock(0) && e.val == "}")  // empty block
        let f = try dispenser("dir \"{\"\n")
        #expect(f.next() && !f.nextBlock(0) && f.val == "dir")  // quoted brace: no block
    }

    @Test func remainingAndCountedArgs() throws {
        let d = try dispenser("dir a \"b c\" `d` {\n}")
        #expect(d.next())
        #expect(d.countRemainingArgs() == 3 && d.val == "dir")
        let raw = Cursor(d.d)
        #expect(d.remainingArgs() == ["a", "b c", "d"])
        #expect(raw.remainingArgsRaw() == ["a", "\"b c\"", "`d`"])
        d.reset()
        #expect(d.next())
        #expect(d.remainingArgsAsTokens().map(\.quote) == [.none, .doubleQuotes, .backticks])
    }

    @Test func argsIntoVariables() throws {
        let d = try dispenser("dir a b\ndir2 c")
        #expect(d.next())
        var a = ""
        var b = ""
        var c = "unchanged"
        #expect(d.args(&a, &b) && a == "a" && b == "b")
        #expect(!d.args(&c) && c == "unchanged")
        #expect(d.next() && d.val == "dir2")
        var x = ""
        var y = "old"
        #expect(!d.args(&x, &y) && x == "c" && y == "old")
        let e = try dispenser("dir 1 2 3")
        #expect(e.next())
        var p = ""
        var q = ""
        var r = ""
        #expect(e.args(&p, &q, &r) && [p, q, r] == ["1", "2", "3"])
        e.reset()
        #expect(e.next() && e.args(count: 2) == ["1", "2"])
        e.reset()
        #expect(e.next() && e.allArgs(count: 2) == nil)
        e.reset()
        #expect(e.next() && e.allArgs(count: 3) == ["1", "2", "3"])
        e.reset()
        #expect(e.next() && e.args(count: 4) == nil)
    }

    @Test func segmentsIncludeTheirBlock() throws {
        let d = try dispenser("a 1 {\n\tb {\n\t\tc\n\t}\n}\nd 2")
        #expect(d.next())
        let segment = d.nextSegment()
        #expect(segment.tokens.map(\.text) == ["a", "1", "{", "b", "{", "c", "}", "}"])
        #expect(segment.directive == "a")
        #expect(d.next() && d.val == "d")
        let sub = d.newFromNextSegment()
        #expect(sub.next() && sub.val == "d" && sub.nextArg() && sub.val == "2" && !sub.next())
    }

    @Test func errors() throws {
        let d = try dispenser("dir {\n}")
        #expect(d.next())
        #expect(d.argErr().description == "wrong argument count or unexpected line ending after 'dir', at Testfile:1")
        #expect(d.next())
        #expect(d.argErr().description == "unexpected token '{', expecting argument, at Testfile:1")
        #expect(
            d.syntaxErr("x").description
                == "syntax error: unexpected token '{', expecting 'x', at Testfile:1 import chain: ['']")
        #expect(d.err("custom").description == "custom, at Testfile:1")
        #expect(d.next())
        #expect(d.eofErr().description == "unexpected EOF, at Testfile:2")
        #expect(d.wrapErr(CaddyfileError(message: "inner", style: .plain)).description == "inner, at Testfile:2")
        let i = Cursor([Token(file: "f", line: 4, text: "x", imports: ["C:1 (import)", "C:2 (import s)"])])
        #expect(i.next())
        #expect(i.err("bad").description == "bad, at f:4 import chain ['C:1 (import)','C:2 (import s)']")
        #expect(
            i.syntaxErr("}").description
                == "syntax error: unexpected token 'x', expecting '}', at f:4 import chain: ['C:1 (import)','C:2 (import s)']"
        )
    }

    @Test func deleteTokens() throws {
        let d = try dispenser("a b c d")
        #expect(d.next() && d.next())
        #expect(d.delete().map(\.text) == ["a", "c", "d"])
        #expect(d.val == "a" && d.next() && d.val == "c")
        #expect(d.next())
        #expect(d.deleteN(2).map(\.text) == ["a"])
        #expect(d.val == "a")
        #expect(d.deleteN(5).map(\.text) == ["a"])
    }

    @Test func tokensFromDifferentImportsAreOnDifferentLines() {
        let d = Cursor([
            Token(file: "C", line: 3, text: "import"),
            Token(file: "C", line: 3, text: "x", imports: ["C:3 (import)"]),
        ])
        #expect(d.next() && !d.nextArg())
        #expect(d.isNextOnNewLine && d.next() && d.isNewLine)
    }

    @Test func scalarValues() throws {
        let d = try dispenser("12 -3 1.5 true \"7\" word 1e3 inf")
        var values: [ScalarValue?] = []
        while d.next() { values.append(d.scalarVal) }
        #expect(
            values == [
                .int(12), .int(-3), .double(1.5), .bool(true), .string("7"), .string("word"), .double(1000),
                .double(.infinity),
            ])
        #expect(GoStrconv.atoi("+5") == 5 && GoStrconv.atoi("9223372036854775808") == nil && GoStrconv.atoi("") == nil)
        #expect(GoStrconv.atoi("-9223372036854775808") == Int.min)
    }

    @Test func contextMap() {
        var d = Dispenser([])
        d.context["matcher_name"] = "@api"
        #expect(d.context["matcher_name"] == "@api")
    }
}

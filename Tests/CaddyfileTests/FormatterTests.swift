import Foundation
import Testing

@testable import Caddyfile

@Suite("Formatter")
struct FormatterTests {
    /// Inputs and the exact output of `caddy fmt` v2.11.7 for them.
    static let cases: [(String, String)] = [
        ("a{\nb\n}", "a {\n\tb\n}\n"),
        ("a {\n    b\n}", "a {\n\tb\n}\n"),
        ("a {\nb {\nc\n}\n}", "a {\n\tb {\n\t\tc\n\t}\n}\n"),
        ("a\n{\nb\n}", "a {\n\tb\n}\n"),
        ("a {\n\n\n\nb\n\n\n\nc\n}", "a {\n\tb\n\n\tc\n}\n"),
        ("a {\n}\nb {\n}", "a {\n}\nb {\n}\n"),
        ("a {\n}\n\n\n\nb {\n}", "a {\n}\n\nb {\n}\n"),
        ("a { b }", "a {\n\tb\n}\n"),
        ("a {b}", "a {b}\n"),
        ("# c\na { # d\nb # e\n}", "# c\na {\n\t# d\n\tb # e\n}\n"),
        ("a {\n\tb \"c  d\"\n}", "a {\n\tb \"c  d\"\n}\n"),
        ("a {\n\tb `{ c }`\n}", "a {\n\tb `{ c }`\n}\n"),
        ("a {\n\tb <<EOF\n  x {\n  EOF\n}", "a {\n\tb <<EOF\n  x {\n  EOF\n}\n"),
        ("a {\n\tb \\<<EOF\n}", "a {\n\tb \\<<EOF\n}\n"),
        ("a {\n\tb c \\\n d\n}", "a {\n\tb c \\\n d\n}\n"),
        ("a {\n\tb \\{c\\}\n}", "a {\n\tb \\{c\\}\n}\n"),
        ("a {\r\n\tb\r\n}\r\n", "a {\n\tb\n}\n"),
        ("  \n\n a  \n\n", "a\n"),
        ("", "\n"),
        ("a {\n\tb {$X}\n}", "a {\n\tb {$X}\n}\n"),
        ("a {\n\tb {}\n}", "a {\n\tb {}\n}\n"),
        ("a {\n\tb }\n}", "a {\n\tb\n}\n}\n"),
        ("a {", "a {\n"),
        ("{ {", "{\n\t{\n"),
        ("a {\n}\n}\n}", "a {\n}\n}\n}\n"),
        ("import x\n{\n\tdebug\n}", "import x\n{\n\tdebug\n}\n"),
        ("a\u{A0}{\n\u{2003}b\n}", "a {\n\tb\n}\n"),
        ("1{2{3{4{5{6{7{8{9{10{11{12{x}}}}}}}}}}}}", "1{2{3{4{5{6{7{8{9{10{11{12{x}}}}}}}}}}}}\n"),
    ]

    @Test(arguments: 0..<cases.count)
    func formatsLikeCaddy(_ index: Int) {
        let (input, expected) = Self.cases[index]
        let output = CaddyfileFormatter.format(Array(input.utf8))
        #expect(String(decoding: output, as: UTF8.self) == expected, "input: \(input.debugDescription)")
    }

    @Test func indentationIsCappedAtTenLevels() {
        let depth = 13
        var input = ""
        for i in 0..<depth { input += "l\(i) {\n" }
        input += "x\n" + String(repeating: "}\n", count: depth)
        let lines = String(decoding: CaddyfileFormatter.format(Array(input.utf8)), as: UTF8.self)
            .split(separator: "\n")
        let maxTabs = lines.map { $0.prefix { $0 == "\t" }.count }.max()
        #expect(maxTabs == 10)
    }

    @Test func invalidUTF8BecomesReplacementCharacters() {
        let output = CaddyfileFormatter.format([0x61, 0x20, 0xFF, 0x62])
        #expect(output == [0x61, 0x20, 0xEF, 0xBF, 0xBD, 0x62, 0x0A])
    }

    @Test func seedExamplesAreAlreadyFormatted() {
        for url in Support.inputs(in: "format") where url.lastPathComponent.hasPrefix("seed-") {
            let input = Support.bytes(url)
            #expect(!input.isEmpty)
            #expect(CaddyfileFormatter.format(input) == input, "\(url.lastPathComponent)")
            #expect(CaddyfileFormatter.firstUnformattedLine(input) == nil)
        }
    }

    @Test func firstUnformattedLine() {
        #expect(CaddyfileFormatter.firstUnformattedLine(Array("a {\n\tb\n}\n".utf8)) == nil)
        #expect(CaddyfileFormatter.firstUnformattedLine(Array("a {\r\n\tb\r\n}\r\n".utf8)) == nil)
        #expect(CaddyfileFormatter.firstUnformattedLine(Array("a {\n\tb\n  c\n}\n".utf8)) == 3)
        #expect(CaddyfileFormatter.firstUnformattedLine(Array("a {\n\tb\n}".utf8)) == 3)
    }
}

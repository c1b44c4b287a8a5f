import IOCore
import Testing

@testable import Handlers

/// The regexp engine against outputs of Go's `regexp` package (documented examples and cases
/// checked with Go 1.22).
@Suite("Directive regexp engine")
struct DirectiveRegexTests {
    func groups(_ pattern: String, _ input: String) throws -> [String?]? {
        let re = try Regex(pattern)
        let bytes = Array(input.utf8)
        return bytes.withUnsafeBytes { b -> [String?]? in
            re.withCaptures { caps in
                guard re.match(b, captures: caps) else { return nil }
                return (0..<re.groupCount).map { g in
                    caps[2 * g] < 0 ? nil : String(decoding: b[caps[2 * g]..<caps[2 * g + 1]], as: UTF8.self)
                }
            }
        }
    }

    func replace(_ pattern: String, _ input: String, _ repl: String) throws -> String {
        let re = try Regex(pattern)
        let out = ByteBuffer(capacity: 64)
        Array(input.utf8).withUnsafeBytes { s in Array(repl.utf8).withUnsafeBytes { r in re.replaceAll(s, with: r, into: out) } }
        return String(decoding: out.readable, as: UTF8.self)
    }

    @Test func goDocReplaceExamples() throws {
        #expect(try replace("a(x*)b", "-ab-axxb-", "T") == "-T-T-")
        #expect(try replace("a(x*)b", "-ab-axxb-", "$1") == "--xx-")
        #expect(try replace("a(x*)b", "-ab-axxb-", "$1W") == "---")
        #expect(try replace("a(x*)b", "-ab-axxb-", "${1}W") == "-W-xxW-")
        #expect(try replace("a(?P<x>x*)b", "-ab-axxb-", "${x}!") == "-!-xx!-")
        #expect(try replace("a*", "baaac", "X") == "XbXcX")
        #expect(try replace("", "abc", "-") == "-a-b-c-")
        #expect(try replace("x", "axbxc", "$$") == "a$b$c")
    }

    @Test func leftmostFirstSubmatches() throws {
        #expect(try groups("(a|ab)(c|bcd)(d*)", "abcd") == ["abcd", "a", "bcd", ""])
        #expect(try groups("(a+)(a*)", "aaa") == ["aaa", "aaa", ""])
        #expect(try groups("(a+?)(a*)", "aaa") == ["aaa", "a", "aa"])
        #expect(try groups("a+?", "aaa") == ["a"])
        #expect(try groups("(a)|(b)", "b") == ["b", nil, "b"])
        #expect(try groups("x*", "yx") == [""])
        #expect(try groups("b+", "aabbbc") == ["bbb"])
    }

    @Test func classesAnchorsAndFlags() throws {
        #expect(try groups("^/api/(\\d+)$", "/api/123") == ["/api/123", "123"])
        #expect(try groups("^/api/(\\d+)$", "/api/12a") == nil)
        #expect(try groups("[^/]+\\.(?:png|jpe?g)$", "/img/cat.jpeg") == ["cat.jpeg"])
        #expect(try groups("(?i)hello", "say HeLLo") == ["HeLLo"])
        #expect(try groups("[[:upper:]]{2,3}", "abCDEFg") == ["CDE"])
        #expect(try groups("\\bfoo\\b", "a foo b") == ["foo"])
        #expect(try groups("\\bfoo\\b", "afoob") == nil)
        #expect(try groups("a.c", "a\nc") == nil)
        #expect(try groups("(?s)a.c", "a\nc") == ["a\nc"])
        #expect(try groups("(?m)^b$", "a\nb\nc") == ["b"])
        #expect(try groups("[]a]+", "]a]x") == ["]a]"])
        #expect(try groups("[a-]+", "a-a") == ["a-a"])
        #expect(try groups("a{2}", "aaaa") == ["aa"])
        #expect(try groups("a{,2}", "a{,2}") == ["a{,2}"])
        #expect(try groups("é+", "caféé!") == ["éé"])
        #expect(try groups("c.f", "cäf") == ["cäf"])
        #expect(try groups("\\x41\\x{42}", "zAB") == ["AB"])
    }

    @Test func namedGroups() throws {
        let re = try Regex("^/(?P<year>\\d{4})/(?<slug>[a-z-]+)$")
        #expect(re.groupCount == 3)
        #expect(re.groupNames == [nil, "year", "slug"])
        #expect(try groups(re.pattern, "/2024/hello-world") == ["/2024/hello-world", "2024", "hello-world"])
    }

    @Test func errorsAreClear() throws {
        #expect(throws: RegexError.self) { try Regex("a(b") }
        #expect(throws: RegexError.self) { try Regex("a)b") }
        #expect(throws: RegexError.self) { try Regex("*a") }
        #expect(throws: RegexError.self) { try Regex("a**") }
        #expect(throws: RegexError.self) { try Regex("[z-a]") }
        #expect(throws: RegexError.self) { try Regex("\\1") }
        #expect(throws: RegexError.self) { try Regex("\\pL") }
        #expect(throws: RegexError.self) { try Regex("a{1001}") }
        #expect(try groups("[a-c-e]+", "x-eb") == ["-eb"])  // Perl mode: '-' is literal here
        #expect(try groups("{re\\.([\\w-\\.]*)}", "{re.a.1}") == ["{re.a.1}", "a.1"])
        do {
            _ = try Regex("\\p{Greek}")
        } catch {
            #expect(error.description.contains("not supported"))
        }
    }

    @Test func linearTimeOnPathologicalPattern() throws {
        // (a*)*b against many a's: exponential for a backtracker, linear here.
        let input = String(repeating: "a", count: 5000)
        #expect(try groups("(a*)*b", input) == nil)
        #expect(try groups("(a|aa)+$", input)?.first == input)
    }
}

/// Parser and compiler for `Regex`: Go's RE2 syntax (`regexp/syntax`), the subset Caddyfiles
/// use in practice. Anything outside it is a config error naming the construct, never a silent
/// difference.
///
/// Supported: literals and escapes (`\.`, `\t \n \r \f \v \a`, `\x41`, `\x{263a}`), `.`,
/// classes (`[a-z]`, `[^…]`, `\d \w \s` and their negations, `[[:alpha:]]`-style ASCII
/// classes), anchors `^ $ \A \z \b \B`, groups `(…)`, `(?:…)`, `(?P<name>…)`, `(?<name>…)`,
/// flags `(?i) (?m) (?s) (?U)` and `(?flags:…)`, alternation, quantifiers `* + ? {n} {n,}
/// {n,m}` (greedy and lazy, counts ≤ 1000). Case folding covers ASCII letters only.
/// Not supported (error): Unicode classes `\p{…}`/`\pL`, `\Q…\E`, octal escapes, `\C`.
extension Regex {
    indirect enum Node {
        case empty
        case literal(UInt32)
        case cls([ClosedRange<UInt32>], negated: Bool)
        case anyChar
        case anyNotNL
        case assert(Assertion)
        case group(Node, capture: Int?)
        case concat([Node])
        case alt([Node])
        case repetition(Node, min: Int, max: Int, greedy: Bool)
    }

    struct Flags {
        var caseInsensitive = false
        var multiLine = false
        var dotNL = false
        var ungreedy = false
    }

    struct Parser {
        let s: [UInt32]
        var i = 0
        var captureCount = 0
        var names: [String?] = [nil]
        let source: String

        init(_ pattern: String) {
            s = pattern.unicodeScalars.map(\.value)
            source = pattern
        }

        func err(_ m: String) -> RegexError { RegexError(pattern: source, message: m) }

        var atEnd: Bool { i >= s.count }
        func peek(_ k: Int = 0) -> UInt32? { i + k < s.count ? s[i + k] : nil }

        mutating func parse() throws(RegexError) -> Node {
            var flags = Flags()
            let n = try parseAlternation(&flags, depth: 0)
            if !atEnd {
                // Only an unbalanced ')' stops the top level early.
                throw err("unexpected ): `\(source)`")
            }
            return n
        }

        mutating func parseAlternation(_ flags: inout Flags, depth: Int) throws(RegexError) -> Node {
            guard depth < 1000 else { throw err("expression nests too deeply") }
            var branches: [Node] = [try parseConcat(&flags, depth: depth)]
            while peek() == ch("|") {
                i += 1
                branches.append(try parseConcat(&flags, depth: depth))
            }
            return branches.count == 1 ? branches[0] : .alt(branches)
        }

        mutating func parseConcat(_ flags: inout Flags, depth: Int) throws(RegexError) -> Node {
            var items: [Node] = []
            while let c = peek(), c != ch("|"), c != ch(")") {
                var atom: Node
                switch c {
                case ch("("):
                    i += 1
                    if peek() == ch("?") {
                        i += 1
                        if let g = try parseGroupFlags(&flags, depth: depth) {
                            atom = g
                        } else {
                            continue  // a bare flag group like (?i): applies to the rest
                        }
                    } else {
                        captureCount += 1
                        let idx = captureCount
                        names.append(nil)
                        var inner = flags
                        let body = try parseAlternation(&inner, depth: depth + 1)
                        guard peek() == ch(")") else { throw err("missing closing ): `\(source)`") }
                        i += 1
                        atom = .group(body, capture: idx)
                    }
                case ch("*"), ch("+"), ch("?"):
                    throw err("missing argument to repetition operator: `\(Parser.str([c]))`")
                case ch("."):
                    i += 1
                    atom = flags.dotNL ? .anyChar : .anyNotNL
                case ch("^"):
                    i += 1
                    atom = .assert(flags.multiLine ? .beginLine : .beginText)
                case ch("$"):
                    i += 1
                    atom = .assert(flags.multiLine ? .endLine : .endText)
                case ch("["):
                    atom = try parseClass(flags)
                case ch("\\"):
                    atom = try parseEscape(flags, inClass: false).node
                default:
                    i += 1
                    atom = Parser.literal(c, flags)
                }
                atom = try parseRepeats(atom, flags)
                items.append(atom)
            }
            if items.isEmpty { return .empty }
            return items.count == 1 ? items[0] : .concat(items)
        }

        /// After `(?`: a named group, a non-capturing group with flags, or a flag setting.
        mutating func parseGroupFlags(_ flags: inout Flags, depth: Int) throws(RegexError) -> Node? {
            // Named capture: (?P<name>…) or (?<name>…).
            if peek() == ch("<") || (peek() == ch("P") && peek(1) == ch("<")) {
                if peek() == ch("P") { i += 1 }
                i += 1
                var name: [UInt32] = []
                while let c = peek(), c != ch(">") {
                    name.append(c)
                    i += 1
                }
                guard peek() == ch(">") else { throw err("invalid named capture: `\(source)`") }
                i += 1
                let nameStr = Parser.str(name)
                guard !name.isEmpty, name.allSatisfy({ Parser.isWord($0) }) else {
                    throw err("invalid named capture: `(?P<\(nameStr)>`")
                }
                if names.contains(nameStr) { throw err("duplicate capture group name: `\(nameStr)`") }
                captureCount += 1
                let idx = captureCount
                names.append(nameStr)
                var inner = flags
                let body = try parseAlternation(&inner, depth: depth + 1)
                guard peek() == ch(")") else { throw err("missing closing ): `\(source)`") }
                i += 1
                return .group(body, capture: idx)
            }
            var f = flags
            var negate = false
            var sawFlag = false
            while let c = peek() {
                i += 1
                switch c {
                case ch("i"): f.caseInsensitive = !negate; sawFlag = true
                case ch("m"): f.multiLine = !negate; sawFlag = true
                case ch("s"): f.dotNL = !negate; sawFlag = true
                case ch("U"): f.ungreedy = !negate; sawFlag = true
                case ch("-"):
                    if negate { throw err("invalid or unsupported Perl syntax: `(?\(Parser.str([c]))`") }
                    negate = true
                    sawFlag = false
                case ch(")"):
                    if negate && !sawFlag { throw err("invalid or unsupported Perl syntax: `(?-)`") }
                    flags = f
                    return nil
                case ch(":"):
                    if negate && !sawFlag { throw err("invalid or unsupported Perl syntax: `(?-:`") }
                    var inner = f
                    let body = try parseAlternation(&inner, depth: depth + 1)
                    guard peek() == ch(")") else { throw err("missing closing ): `\(source)`") }
                    i += 1
                    return .group(body, capture: nil)
                default:
                    throw err("invalid or unsupported Perl syntax: `(?\(Parser.str([c]))`")
                }
            }
            throw err("missing closing ): `\(source)`")
        }

        mutating func parseRepeats(_ atom: Node, _ flags: Flags) throws(RegexError) -> Node {
            var node = atom
            var repeated = false
            while let c = peek() {
                var lo = 0, hi = -1
                let start = i
                switch c {
                case ch("*"): i += 1
                case ch("+"): lo = 1; i += 1
                case ch("?"): hi = 1; i += 1
                case ch("{"):
                    guard let (a, b) = parseCount() else { return node }  // a literal '{'
                    lo = a
                    hi = b
                default:
                    return node
                }
                if repeated {
                    throw err("invalid nested repetition operator: `\(Parser.str(Array(s[start..<i])))`")
                }
                if case .empty = node { throw err("missing argument to repetition operator") }
                var greedy = true
                if peek() == ch("?") {
                    i += 1
                    greedy = false
                }
                if flags.ungreedy { greedy.toggle() }
                if lo > 1000 || hi > 1000 {
                    throw err("invalid repeat count: `\(Parser.str(Array(s[start..<i])))`")
                }
                node = .repetition(node, min: lo, max: hi, greedy: greedy)
                repeated = true
            }
            return node
        }

        /// `{n}`, `{n,}`, `{n,m}`; nil (and no consumption) when the brace is literal.
        mutating func parseCount() -> (Int, Int)? {
            let save = i
            i += 1
            func number(_ p: inout Parser) -> Int? {
                var v = 0
                var digits = 0
                while let c = p.peek(), c >= 0x30, c <= 0x39 {
                    v = min(v * 10 + Int(c - 0x30), 100_000)
                    digits += 1
                    p.i += 1
                }
                return digits > 0 ? v : nil
            }
            guard let lo = number(&self) else { i = save; return nil }
            var hi = lo
            if peek() == ch(",") {
                i += 1
                if peek() == ch("}") { hi = -1 } else if let h = number(&self) { hi = h } else { i = save; return nil }
            }
            guard peek() == ch("}") else { i = save; return nil }
            i += 1
            if hi != -1 && hi < lo { i = save; return nil }
            return (lo, hi)
        }

        static func literal(_ c: UInt32, _ flags: Flags) -> Node {
            if flags.caseInsensitive, let other = Regex.asciiOtherCase(c) {
                let a = min(c, other), b = max(c, other)
                return .cls([a...a, b...b], negated: false)
            }
            return .literal(c)
        }

        static func isWord(_ c: UInt32) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
        }

        static func str(_ u: [UInt32]) -> String {
            var s = ""
            for v in u { if let sc = Unicode.Scalar(v) { s.unicodeScalars.append(sc) } }
            return s
        }
    }
}

@inline(__always) func ch(_ c: Unicode.Scalar) -> UInt32 { c.value }

/// A regular expression that Berth cannot compile (bad syntax or unsupported construct).
package struct RegexError: Error, CustomStringConvertible, Sendable {
    package var pattern: String
    package var message: String
    package var description: String { "error parsing regexp: \(message)" }
}

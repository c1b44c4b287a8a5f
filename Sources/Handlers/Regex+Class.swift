/// Escapes and character classes for `Regex.Parser` (Go `regexp/syntax` rules, ASCII classes).
extension Regex.Parser {
    /// What an escape stands for: a node outside classes, ranges inside them.
    struct Escape {
        var node: Regex.Node
        var ranges: [ClosedRange<UInt32>]
        var isClass: Bool
    }

    static let digit: [ClosedRange<UInt32>] = [0x30...0x39]
    static let space: [ClosedRange<UInt32>] = [0x09...0x0A, 0x0C...0x0D, 0x20...0x20]
    static let word: [ClosedRange<UInt32>] = [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A]

    /// `[:name:]` ASCII classes (Go's `posixGroup`).
    static func posixClass(_ name: String) -> [ClosedRange<UInt32>]? {
        switch name {
        case "alnum": return [0x30...0x39, 0x41...0x5A, 0x61...0x7A]
        case "alpha": return [0x41...0x5A, 0x61...0x7A]
        case "ascii": return [0x00...0x7F]
        case "blank": return [0x09...0x09, 0x20...0x20]
        case "cntrl": return [0x00...0x1F, 0x7F...0x7F]
        case "digit": return digit
        case "graph": return [0x21...0x7E]
        case "lower": return [0x61...0x7A]
        case "print": return [0x20...0x7E]
        case "punct": return [0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E]
        case "space": return [0x09...0x0D, 0x20...0x20]
        case "upper": return [0x41...0x5A]
        case "word": return word
        case "xdigit": return [0x30...0x39, 0x41...0x46, 0x61...0x66]
        default: return nil
        }
    }

    /// The complement of sorted, merged ranges over all runes.
    static func negate(_ r: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        let m = merge(r)
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for x in m {
            if x.lowerBound > next { out.append(next...(x.lowerBound - 1)) }
            next = x.upperBound &+ 1
            if x.upperBound == 0x10FFFF { return out }
        }
        out.append(next...0x10FFFF)
        return out
    }

    /// Sorts and merges overlapping or adjacent ranges.
    static func merge(_ r: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        let sorted = r.sorted { $0.lowerBound < $1.lowerBound }
        var out: [ClosedRange<UInt32>] = []
        for x in sorted {
            if let last = out.last, x.lowerBound <= last.upperBound &+ 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, x.upperBound)
            } else {
                out.append(x)
            }
        }
        return out
    }

    /// Adds the other ASCII case of every letter in `r`.
    static func fold(_ r: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        var out = r
        for x in r {
            let lo = max(x.lowerBound, 0x41), hi = min(x.upperBound, 0x5A)
            if lo <= hi { out.append((lo + 0x20)...(hi + 0x20)) }
            let lo2 = max(x.lowerBound, 0x61), hi2 = min(x.upperBound, 0x7A)
            if lo2 <= hi2 { out.append((lo2 - 0x20)...(hi2 - 0x20)) }
        }
        return merge(out)
    }

    /// Parses an escape at `\`.
    mutating func parseEscape(_ flags: Regex.Flags, inClass: Bool) throws(RegexError) -> Escape {
        i += 1
        guard let c = peek() else { throw err("trailing backslash at end of expression") }
        i += 1
        func lit(_ v: UInt32) -> Escape {
            Escape(node: Self.literal(v, flags), ranges: [v...v], isClass: false)
        }
        func cls(_ r: [ClosedRange<UInt32>], _ neg: Bool) -> Escape {
            let rr = neg ? Self.negate(r) : r
            return Escape(node: .cls(rr, negated: false), ranges: rr, isClass: true)
        }
        switch c {
        case ch("d"): return cls(Self.digit, false)
        case ch("D"): return cls(Self.digit, true)
        case ch("s"): return cls(Self.space, false)
        case ch("S"): return cls(Self.space, true)
        case ch("w"): return cls(Self.word, false)
        case ch("W"): return cls(Self.word, true)
        case ch("a"): return lit(0x07)
        case ch("f"): return lit(0x0C)
        case ch("n"): return lit(0x0A)
        case ch("r"): return lit(0x0D)
        case ch("t"): return lit(0x09)
        case ch("v"): return lit(0x0B)
        case ch("A"), ch("z"), ch("b"), ch("B"):
            if inClass { throw err("invalid escape sequence: `\\\(Self.str([c]))`") }
            let a: Regex.Assertion = c == ch("A") ? .beginText : c == ch("z") ? .endText : c == ch("b") ? .wordBoundary : .notWordBoundary
            return Escape(node: .assert(a), ranges: [], isClass: false)
        case ch("x"):
            var v: UInt32 = 0
            if peek() == ch("{") {
                i += 1
                var n = 0
                while let h = peek(), let d = Self.hexValue(h) {
                    v = v * 16 + d
                    n += 1
                    i += 1
                    if v > 0x10FFFF { throw err("invalid escape sequence: `\\x{…`") }
                }
                guard n > 0, peek() == ch("}") else { throw err("invalid escape sequence: `\\x{…`") }
                i += 1
            } else {
                guard let h1 = peek(), let d1 = Self.hexValue(h1), let h2 = peek(1), let d2 = Self.hexValue(h2) else {
                    throw err("invalid escape sequence: `\\x`")
                }
                i += 2
                v = d1 * 16 + d2
            }
            return lit(v)
        case ch("0")...ch("7"):
            // Octal: \0 with up to two more digits, or \1-\7 followed by another octal digit
            // (a lone \1-\9 would be a backreference, which RE2 rejects).
            if c != ch("0"), !(peek().map { $0 >= 0x30 && $0 <= 0x37 } ?? false) {
                throw err("invalid escape sequence: `\\\(Self.str([c]))`")
            }
            var v = c - 0x30
            for _ in 0..<2 {
                guard let d = peek(), d >= 0x30, d <= 0x37 else { break }
                v = v * 8 + (d - 0x30)
                i += 1
            }
            return lit(v)
        case ch("p"), ch("P"):
            throw err("Unicode classes (\\p, \\P) are not supported by Berth's regexp engine: `\(source)`")
        case ch("Q"):
            throw err("\\Q…\\E quoting is not supported by Berth's regexp engine: `\(source)`")
        default:
            if c < 0x80 && !Self.isWord(c) { return lit(c) }
            throw err("invalid escape sequence: `\\\(Self.str([c]))`")
        }
    }

    static func hexValue(_ c: UInt32) -> UInt32? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// Parses `[...]` (Go's parseClass in Perl mode: `]` first is literal, `-` literal unless it makes a range).
    mutating func parseClass(_ flags: Regex.Flags) throws(RegexError) -> Regex.Node {
        let start = i
        i += 1
        var negated = false
        if peek() == ch("^") {
            negated = true
            i += 1
        }
        var ranges: [ClosedRange<UInt32>] = []
        var first = true
        while true {
            guard let c = peek() else { throw err("missing closing ]: `\(Self.str(Array(s[start...])))`") }
            if c == ch("]") && !first { break }
            // Perl mode (Go's regexp.Compile): `-` is fine anywhere; `[a-c-e]` is a-c, '-', 'e'.
            first = false
            // [:alpha:]
            if c == ch("["), peek(1) == ch(":") {
                var j = i + 2
                while j + 1 < s.count && !(s[j] == ch(":") && s[j + 1] == ch("]")) { j += 1 }
                if j + 1 < s.count {
                    var name = Self.str(Array(s[(i + 2)..<j]))
                    var neg = false
                    if name.hasPrefix("^") {
                        neg = true
                        name.removeFirst()
                    }
                    guard let r = Self.posixClass(name) else {
                        throw err("invalid character class range: `[:\(name):]`")
                    }
                    ranges += neg ? Self.negate(r) : r
                    i = j + 2
                    continue
                }
            }
            var lo: UInt32
            if c == ch("\\") {
                let e = try parseEscape(flags, inClass: true)
                if e.isClass {
                    ranges += e.ranges
                    continue
                }
                lo = e.ranges[0].lowerBound
            } else {
                lo = c
                i += 1
            }
            var hi = lo
            if peek() == ch("-"), let n = peek(1), n != ch("]") {
                i += 1
                if n == ch("\\") {
                    let e = try parseEscape(flags, inClass: true)
                    if e.isClass { throw err("invalid character class range") }
                    hi = e.ranges[0].lowerBound
                } else {
                    hi = n
                    i += 1
                }
                if hi < lo { throw err("invalid character class range: `\(Self.str([lo, ch("-"), hi]))`") }
            }
            ranges.append(lo...hi)
        }
        i += 1  // ]
        if flags.caseInsensitive { ranges = Self.fold(ranges) }
        let merged = Self.merge(ranges)
        return .cls(negated ? Self.negate(merged) : merged, negated: false)
    }
}

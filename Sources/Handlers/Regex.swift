import IOCore

/// A compiled regular expression with Go's `regexp` semantics (RE2 syntax, leftmost-first
/// submatches, UTF-8 input; see `Regex+Parse.swift` for the supported syntax), matched by a
/// Pike VM: time linear in the input, no backtracking blow-up, and no heap allocation per match
/// (the VM's thread lists live in a stack-allocated temporary buffer).
///
/// Used by `header` replacements, `uri path_regexp`, and the `path_regexp` /
/// `header_regexp` matchers. No Foundation.
package final class Regex: Sendable {
    enum Assertion: Sendable { case beginText, endText, beginLine, endLine, wordBoundary, notWordBoundary }

    enum Inst: Sendable {
        case rune(UInt32)
        case ranges([ClosedRange<UInt32>])
        case anyChar
        case anyNotNL
        case split(Int, Int)
        case jump(Int)
        case save(Int)
        case assert(Assertion)
        case match
    }

    /// The pattern as written.
    package let pattern: String
    /// Number of groups including group 0 (the whole match).
    package let groupCount: Int
    /// Group names by index (nil for unnamed groups and group 0).
    package let groupNames: [String?]
    let program: [Inst]

    /// Compiles `pattern`; throws on bad syntax or an unsupported construct.
    package init(_ pattern: String) throws(RegexError) {
        var p = Parser(pattern)
        let node = try p.parse()
        self.pattern = pattern
        groupCount = p.captureCount + 1
        groupNames = p.names
        var c = Compiler()
        c.emit(.save(0))
        try c.compile(node, pattern)
        c.emit(.save(1))
        c.emit(.match)
        program = c.insts
    }

    /// The other ASCII case of a letter.
    static func asciiOtherCase(_ c: UInt32) -> UInt32? {
        if c >= 0x41 && c <= 0x5A { return c + 0x20 }
        if c >= 0x61 && c <= 0x7A { return c - 0x20 }
        return nil
    }

    struct Compiler {
        var insts: [Inst] = []
        @discardableResult
        mutating func emit(_ i: Inst) -> Int {
            insts.append(i)
            return insts.count - 1
        }

        mutating func compile(_ n: Node, _ pattern: String) throws(RegexError) {
            guard insts.count < 20_000 else { throw RegexError(pattern: pattern, message: "expression too large") }
            switch n {
            case .empty: break
            case .literal(let c): emit(.rune(c))
            case .cls(let r, _): emit(.ranges(r))
            case .anyChar: emit(.anyChar)
            case .anyNotNL: emit(.anyNotNL)
            case .assert(let a): emit(.assert(a))
            case .group(let body, let cap):
                if let k = cap { emit(.save(2 * k)) }
                try compile(body, pattern)
                if let k = cap { emit(.save(2 * k + 1)) }
            case .concat(let items):
                for x in items { try compile(x, pattern) }
            case .alt(let branches):
                var jumps: [Int] = []
                for (k, b) in branches.enumerated() {
                    if k < branches.count - 1 {
                        let split = emit(.split(0, 0))
                        try compile(b, pattern)
                        jumps.append(emit(.jump(0)))
                        insts[split] = .split(split + 1, insts.count)
                    } else {
                        try compile(b, pattern)
                    }
                }
                for j in jumps { insts[j] = .jump(insts.count) }
            case .repetition(let body, let lo, let hi, let greedy):
                for _ in 0..<lo { try compile(body, pattern) }
                if hi == -1 {
                    // body*: L: split(body, out); body; jump L
                    let split = emit(.split(0, 0))
                    try compile(body, pattern)
                    emit(.jump(split))
                    insts[split] = greedy ? .split(split + 1, insts.count) : .split(insts.count, split + 1)
                } else if hi > lo {
                    // (body(body(…)?)?)? for the optional copies.
                    var splits: [Int] = []
                    for _ in lo..<hi {
                        splits.append(emit(.split(0, 0)))
                        try compile(body, pattern)
                    }
                    let end = insts.count
                    for s in splits { insts[s] = greedy ? .split(s + 1, end) : .split(end, s + 1) }
                }
            }
        }
    }

    // MARK: - Matching

    /// Decodes the UTF-8 rune at `i` (invalid bytes decode as U+FFFD of width 1, as in Go).
    @inline(__always)
    static func rune(_ s: UnsafeRawBufferPointer, _ i: Int) -> (UInt32, Int) {
        let b0 = s[i]
        if b0 < 0x80 { return (UInt32(b0), 1) }
        let n = s.count
        @inline(__always) func cont(_ k: Int) -> UInt32? {
            guard i + k < n else { return nil }
            let b = s[i + k]
            return b & 0xC0 == 0x80 ? UInt32(b & 0x3F) : nil
        }
        if b0 >= 0xC2 && b0 <= 0xDF, let c1 = cont(1) { return (UInt32(b0 & 0x1F) << 6 | c1, 2) }
        if b0 >= 0xE0 && b0 <= 0xEF, let c1 = cont(1), let c2 = cont(2) {
            let v = UInt32(b0 & 0x0F) << 12 | c1 << 6 | c2
            if v >= 0x800 && !(v >= 0xD800 && v <= 0xDFFF) { return (v, 3) }
        }
        if b0 >= 0xF0 && b0 <= 0xF4, let c1 = cont(1), let c2 = cont(2), let c3 = cont(3) {
            let v = UInt32(b0 & 0x07) << 18 | c1 << 12 | c2 << 6 | c3
            if v >= 0x10000 && v <= 0x10FFFF { return (v, 4) }
        }
        return (0xFFFD, 1)
    }

    @inline(__always)
    static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
    }

    @inline(__always)
    static func inRanges(_ r: [ClosedRange<UInt32>], _ c: UInt32) -> Bool {
        var lo = 0, hi = r.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if c < r[mid].lowerBound { hi = mid } else if c > r[mid].upperBound { lo = mid + 1 } else { return true }
        }
        return false
    }

    func assertionHolds(_ a: Assertion, _ s: UnsafeRawBufferPointer, _ i: Int) -> Bool {
        switch a {
        case .beginText: return i == 0
        case .endText: return i == s.count
        case .beginLine: return i == 0 || s[i - 1] == 0x0A
        case .endLine: return i == s.count || s[i] == 0x0A
        case .wordBoundary, .notWordBoundary:
            let before = i > 0 && Regex.isWordByte(s[i - 1])
            let after = i < s.count && Regex.isWordByte(s[i])
            return (before != after) == (a == .wordBoundary)
        }
    }

    /// Searches `input` from byte `from` for the leftmost-first match. On success `caps` (at
    /// least `2 * groupCount` slots) holds byte offsets of each group, -1 for groups that did
    /// not take part.
    package func match(_ input: UnsafeRawBufferPointer, from: Int = 0, captures caps: UnsafeMutableBufferPointer<Int>) -> Bool {
        precondition(caps.count >= 2 * groupCount)
        let n = program.count
        let slots = 2 * groupCount
        // Layout: [sparse0 n][dense0 n][sparse1 n][dense1 n][caps0 n*slots][caps1 n*slots]
        //         [stack 2*(n+slots)*2][scratch slots]
        let stackCap = 4 * (n + slots) + 8
        let total = 4 * n + 2 * n * slots + stackCap * 2 + slots
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: total) { mem in
            let base = mem.baseAddress!
            var lists = (ThreadList(base, n, base + 4 * n, slots), ThreadList(base + 2 * n, n, base + 4 * n + n * slots, slots))
            let stack = base + 4 * n + 2 * n * slots
            let scratch = stack + stackCap * 2
            for k in 0..<slots { caps[k] = -1 }
            var matched = false
            var pos = from
            while true {
                if !matched {
                    for k in 0..<slots { scratch[k] = -1 }
                    addThread(&lists.0, 0, pos, scratch, slots, input, stack)
                }
                if lists.0.count == 0 { break }
                let atEnd = pos >= input.count
                var r: UInt32 = 0, w = 0
                if !atEnd { (r, w) = Regex.rune(input, pos) }
                lists.1.clear()
                var t = 0
                while t < lists.0.count {
                    let pc = lists.0.dense[t]
                    let tcaps = lists.0.caps(t)
                    t += 1
                    var ok = false
                    switch program[pc] {
                    case .match:
                        for k in 0..<slots { caps[k] = tcaps[k] }
                        caps[1] = pos
                        matched = true
                        t = lists.0.count  // cut lower-priority threads
                        continue
                    case .rune(let c): ok = !atEnd && r == c
                    case .ranges(let rr): ok = !atEnd && Regex.inRanges(rr, r)
                    case .anyChar: ok = !atEnd
                    case .anyNotNL: ok = !atEnd && r != 0x0A
                    default: ok = false
                    }
                    if ok { addThread(&lists.1, pc + 1, pos + w, tcaps, slots, input, stack) }
                }
                swap(&lists.0, &lists.1)
                if atEnd { break }
                pos += w
                if matched && lists.0.count == 0 { break }
            }
            // A match found in the final step (at end of input) is recorded by the loop above.
            return matched
        }
    }

    /// The sparse-set thread list of the Pike VM, with one capture row per thread.
    struct ThreadList {
        let sparse: UnsafeMutablePointer<Int>
        let dense: UnsafeMutablePointer<Int>
        let capsBase: UnsafeMutablePointer<Int>
        let slots: Int
        var count = 0
        init(_ base: UnsafeMutablePointer<Int>, _ n: Int, _ capsBase: UnsafeMutablePointer<Int>, _ slots: Int) {
            sparse = base
            dense = base + n
            self.capsBase = capsBase
            self.slots = slots
        }
        @inline(__always) mutating func clear() { count = 0 }
        @inline(__always) func contains(_ pc: Int) -> Bool {
            let j = sparse[pc]
            return j >= 0 && j < count && dense[j] == pc
        }
        @inline(__always) mutating func insert(_ pc: Int) -> Int {
            sparse[pc] = count
            dense[count] = pc
            count += 1
            return count - 1
        }
        @inline(__always) func caps(_ j: Int) -> UnsafeMutablePointer<Int> { capsBase + j * slots }
    }

    /// Follows empty transitions from `pc0` in priority order and adds every rune-consuming
    /// (or matching) instruction reached to `list`, each with its own copy of the captures.
    /// Explicit stack: entries are `pc` (≥ 0) or a capture restore `-(slot+1)` followed by the
    /// old value.
    private func addThread(_ list: inout ThreadList, _ pc0: Int, _ pos: Int, _ caps0: UnsafeMutablePointer<Int>,
                           _ slots: Int, _ input: UnsafeRawBufferPointer, _ stack: UnsafeMutablePointer<Int>) {
        // Working captures: copy into a row we own (the last row of the list is free only if
        // the list is not full, so use the stack's tail area instead).
        let work = stack + 4 * (program.count + slots) + 8
        for k in 0..<slots { work[k] = caps0[k] }
        var sp = 0
        stack[sp] = pc0
        sp += 1
        while sp > 0 {
            sp -= 1
            var pc = stack[sp]
            if pc < 0 {
                // Restore a capture slot.
                sp -= 1
                work[-pc - 1] = stack[sp]
                continue
            }
            while true {
                if list.contains(pc) { break }
                let j = list.insert(pc)
                switch program[pc] {
                case .jump(let to):
                    pc = to
                    continue
                case .split(let a, let b):
                    stack[sp] = b
                    sp += 1
                    pc = a
                    continue
                case .save(let k):
                    if k < slots {
                        stack[sp] = work[k]
                        stack[sp + 1] = -(k + 1)
                        sp += 2
                        work[k] = pos
                    }
                    pc += 1
                    continue
                case .assert(let a):
                    if !assertionHolds(a, input, pos) { break }
                    pc += 1
                    continue
                default:
                    let row = list.caps(j)
                    for k in 0..<slots { row[k] = work[k] }
                }
                break
            }
        }
    }
}

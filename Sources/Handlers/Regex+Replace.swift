import IOCore

/// Go's `Regexp.ReplaceAllString` and `Expand`, over bytes, appending to a `ByteBuffer`.
extension Regex {
    /// Largest `groupCount` handled with a stack buffer of captures.
    static let maxStackGroups = 32

    /// Calls `body` with a temporary capture buffer sized for this regex.
    @inline(__always)
    func withCaptures<R>(_ body: (UnsafeMutableBufferPointer<Int>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * groupCount) { body($0) }
    }

    /// True when `input` contains a match.
    package func matches(_ input: UnsafeRawBufferPointer) -> Bool {
        withCaptures { match(input, captures: $0) }
    }

    /// Go's `ReplaceAllString(src, repl)`: every non-overlapping match is replaced by `repl`
    /// with `$1`, `${1}`, `$name`, `${name}` and `$$` expanded; the result is appended to `out`.
    package func replaceAll(_ src: UnsafeRawBufferPointer, with repl: UnsafeRawBufferPointer, into out: ByteBuffer) {
        withCaptures { caps in
            var lastMatchEnd = 0
            var searchPos = 0
            let end = src.count
            while searchPos <= end {
                guard match(src, from: searchPos, captures: caps) else { break }
                let a0 = caps[0], a1 = caps[1]
                if a0 > lastMatchEnd { out.append(UnsafeRawBufferPointer(rebasing: src[lastMatchEnd..<a0])) }
                // No replacement for an empty match right after the previous match.
                if a1 > lastMatchEnd || a0 == 0 { expand(repl, src, caps, into: out) }
                lastMatchEnd = a1
                let width = searchPos < end ? Regex.rune(src, searchPos).1 : 0
                if searchPos + width > a1 {
                    searchPos += width
                } else if searchPos + 1 > a1 {
                    searchPos += 1
                } else {
                    searchPos = a1
                }
            }
            if lastMatchEnd < end { out.append(UnsafeRawBufferPointer(rebasing: src[lastMatchEnd..<end])) }
        }
    }

    /// Go's `Regexp.expand`: appends `template` with `$` references to groups of `caps` in `src`.
    package func expand(_ template: UnsafeRawBufferPointer, _ src: UnsafeRawBufferPointer, _ caps: UnsafeMutableBufferPointer<Int>,
                        into out: ByteBuffer) {
        var i = 0
        let n = template.count
        let dollar = UInt8(ascii: "$")
        while i < n {
            let c = template[i]
            if c != dollar {
                out.append(byte: c)
                i += 1
                continue
            }
            i += 1
            if i < n && template[i] == dollar {
                out.append(byte: dollar)
                i += 1
                continue
            }
            guard let (nameRange, num, next) = Regex.extract(template, i) else {
                out.append(byte: dollar)
                continue
            }
            i = next
            var group = -1
            if num >= 0 {
                group = num
            } else {
                let name = UnsafeRawBufferPointer(rebasing: template[nameRange])
                for (g, gn) in groupNames.enumerated() {
                    if let gn, gn.utf8.elementsEqual(name) { group = g; break }
                }
            }
            if group >= 0 && 2 * group + 1 < caps.count && group < groupCount && caps[2 * group] >= 0 {
                out.append(UnsafeRawBufferPointer(rebasing: src[caps[2 * group]..<caps[2 * group + 1]]))
            }
        }
    }

    /// Go's `extract`: a group name after `$` (`name` or `{name}`), its number when all
    /// digits without a leading zero (else -1), and where the template continues.
    static func extract(_ t: UnsafeRawBufferPointer, _ start: Int) -> (Range<Int>, Int, Int)? {
        var i = start
        let n = t.count
        guard i < n else { return nil }
        var brace = false
        if t[i] == UInt8(ascii: "{") {
            brace = true
            i += 1
        }
        let nameStart = i
        while i < n, isWordByte(t[i]) { i += 1 }
        guard i > nameStart else { return nil }
        let nameRange = nameStart..<i
        if brace {
            guard i < n, t[i] == UInt8(ascii: "}") else { return nil }
            i += 1
        }
        var num = 0
        for k in nameRange {
            let b = t[k]
            if b < 0x30 || b > 0x39 || num >= 100_000_000 { num = -1; break }
            num = num * 10 + Int(b - 0x30)
        }
        if t[nameStart] == 0x30 && nameRange.count > 1 { num = -1 }
        return (nameRange, num, i)
    }
}

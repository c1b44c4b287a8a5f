/// Substitution of `import` arguments into imported tokens, as Caddy does it
/// (`caddyconfig/caddyfile/importargs.go` plus `caddy.Replacer.ReplaceKnown`).
///
/// - A token that is exactly `{args[N:M]}`, `{args[N:]}`, `{args[:M]}` or `{args[:]}` expands to one
///   token per argument in the range (variadic); a range out of bounds leaves the token as it is.
/// - Elsewhere, `{args[N]}` (and the deprecated `{args.N}`) inside a token is replaced by argument N;
///   unknown or out-of-range placeholders stay literal.
/// - Like Caddy's replacer, `\{` and `\}` lose their backslash in any imported token that contains
///   a brace, and a token with more than 100 unclosed `{` becomes empty.
struct ImportArguments {
    /// The arguments after the import pattern.
    let args: [String]

    private static let deprecatedPrefix = Array("args.".utf8)
    private static let indexPrefix = Array("args[".utf8)

    /// The argument range of a variadic placeholder token, or `nil` if `text` is not one.
    func variadicRange(_ text: String) -> Range<Int>? {
        guard text.bytesHavePrefix("{args["), text.bytesHaveSuffix("]}") else { return nil }
        let bytes = Array(text.utf8)
        guard bytes.count >= 8 else { return nil }
        let inner = bytes[6..<(bytes.count - 2)]
        if inner.isEmpty { return nil }  // "{args[]}" — Caddy warns and leaves it
        guard let colon = inner.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let start = inner[inner.startIndex..<colon]
        let end = inner[(colon + 1)...]
        if start.contains(UInt8(ascii: "}")) || end.contains(UInt8(ascii: "{")) { return nil }
        var lower = 0
        var upper = args.count
        if !start.isEmpty {
            guard let v = GoStrconv.atoi(String(decoding: start, as: UTF8.self)) else { return nil }
            lower = v
        }
        if !end.isEmpty {
            guard let v = GoStrconv.atoi(String(decoding: end, as: UTF8.self)) else { return nil }
            upper = v
        }
        guard lower >= 0, lower <= upper, upper <= args.count else { return nil }
        return lower..<upper
    }

    /// The value for placeholder `key` (without braces), or `nil` if it is not a usable
    /// `args` placeholder.
    func value(forKey key: [UInt8]) -> String? {
        let newline = UInt8(ascii: "\n")
        // Deprecated form: the regexp `args\.(.+)`; if it matches anywhere, this branch decides.
        let startsArgument = { (i: Int) in i < key.count && key[i] != newline }
        if let p = Self.firstMatch(of: Self.deprecatedPrefix, in: key, where: startsArgument) {
            let runEnd = key[(p + 5)...].firstIndex(of: newline) ?? key.count
            guard p == 0, runEnd == key.count else { return nil }
            return argument(String(decoding: key[5...], as: UTF8.self))
        }
        // Current form: the regexp `args\[(.+)]`, leftmost match, greedy within one line.
        var p = 0
        while let start = Self.firstMatch(of: Self.indexPrefix, in: key, from: p, where: { _ in true }) {
            let runEnd = key[(start + 5)...].firstIndex(of: newline) ?? key.count
            var r = runEnd - 1
            while r >= start + 6 && key[r] != UInt8(ascii: "]") { r -= 1 }
            if r >= start + 6 {
                guard start == 0, r == key.count - 1 else { return nil }
                let group = key[5..<r]
                if group.contains(UInt8(ascii: ":")) { return nil }  // variadic must stand alone
                return argument(String(decoding: group, as: UTF8.self))
            }
            p = start + 1
        }
        return nil
    }

    private func argument(_ index: String) -> String? {
        // Caddy panics on a negative index; Berth treats it as unknown.
        guard let i = GoStrconv.atoi(index), i >= 0, i < args.count else { return nil }
        return args[i]
    }

    private static func firstMatch(
        of needle: [UInt8], in haystack: [UInt8], from: Int = 0, where accept: (Int) -> Bool
    ) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        var i = from
        while i + needle.count <= haystack.count {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) && accept(i + needle.count) {
                return i
            }
            i += 1
        }
        return nil
    }

    /// Caddy's `Replacer.ReplaceKnown(input, "")` with the args provider.
    func replaceKnown(_ input: String) -> String {
        let open = UInt8(ascii: "{")
        let close = UInt8(ascii: "}")
        let escape = UInt8(ascii: "\\")
        let bytes = Array(input.utf8)
        guard bytes.contains(open) || bytes.contains(close) else { return input }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var lastWrite = 0
        var unclosed = 0
        var i = 0
        scan: while i < bytes.count {
            defer { i += 1 }
            if i > 0 && bytes[i - 1] == escape && (bytes[i] == close || bytes[i] == open) {
                out.append(contentsOf: bytes[clamped: lastWrite..<(i - 1)])
                lastWrite = i
                continue
            }
            if bytes[i] != open { continue }
            if unclosed > 100 { return "" }  // "too many unclosed placeholders"
            guard var end = bytes[i...].firstIndex(of: close) else {
                unclosed += 1
                continue
            }
            while end > 0 && end < bytes.count - 1 && bytes[end - 1] == escape {
                guard let nextEnd = bytes[(end + 1)...].firstIndex(of: close) else {
                    unclosed += 1
                    continue scan
                }
                end = nextEnd
            }
            out.append(contentsOf: bytes[clamped: lastWrite..<i])
            let key = Array(bytes[clamped: (i + 1)..<end])
            guard let value = self.value(forKey: key) else {
                lastWrite = i
                continue
            }
            out.append(contentsOf: value.utf8)
            i = end
            lastWrite = end + 1
        }
        out.append(contentsOf: bytes[clamped: lastWrite..<bytes.count])
        return String(decoding: out, as: UTF8.self)
    }
}

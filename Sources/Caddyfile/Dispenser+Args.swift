extension Dispenser {
    // MARK: - Arguments

    /// Loads the remaining arguments of the line (stopping before an unquoted `{`).
    package mutating func remainingArgs() -> [String] {
        var args: [String] = []
        while nextArg() { args.append(val) }
        return args
    }

    /// Like ``remainingArgs()`` but keeps quotes (see ``Token/rawText``).
    package mutating func remainingArgsRaw() -> [String] {
        var args: [String] = []
        while nextArg() { args.append(valRaw) }
        return args
    }

    /// Like ``remainingArgs()`` but returns the tokens.
    package mutating func remainingArgsAsTokens() -> [Token] {
        var args: [Token] = []
        while nextArg() { args.append(token) }
        return args
    }

    /// Counts the remaining arguments of the line without consuming them.
    package mutating func countRemainingArgs() -> Int {
        var count = 0
        while nextArg() { count += 1 }
        for _ in 0..<count { prev() }
        return count
    }

    /// Loads the next `count` arguments; `nil` (with the arguments read so far consumed, as in
    /// Caddy) if the line has fewer.
    package mutating func args(count: Int) -> [String]? {
        var out: [String] = []
        for _ in 0..<max(0, count) {
            guard nextArg() else { return nil }
            out.append(val)
        }
        return out
    }

    /// Loads the next argument into `a`; `false` (and `a` unchanged) if there is none.
    package mutating func args(_ a: inout String) -> Bool {
        guard let v = args(count: 1) else { return false }
        a = v[0]
        return true
    }

    /// Loads the next two arguments; on failure the targets filled so far keep their new values,
    /// like Caddy's `Args`.
    package mutating func args(_ a: inout String, _ b: inout String) -> Bool {
        guard nextArg() else { return false }
        a = val
        guard nextArg() else { return false }
        b = val
        return true
    }

    /// Loads the next three arguments (see ``args(_:_:)``).
    package mutating func args(_ a: inout String, _ b: inout String, _ c: inout String) -> Bool {
        guard args(&a, &b), nextArg() else { return false }
        c = val
        return true
    }

    /// Like ``args(count:)`` but also fails if more arguments follow on the line (Caddy's
    /// `AllArgs`).
    package mutating func allArgs(count: Int) -> [String]? {
        guard let values = args(count: count) else { return nil }
        if nextArg() {
            prev()
            return nil
        }
        return values
    }

    // MARK: - Segments

    /// The tokens from the current one to the end of its line, plus the block opened at the end
    /// of the line (braces included). The closing brace is left for the caller's `next()`.
    package mutating func nextSegment() -> Segment {
        var result = [token]
        while nextArg() { result.append(token) }
        var openedBlock = false
        let start = nesting
        while nextBlock(start) {
            if !openedBlock {
                // nextBlock consumed the opening brace; include it.
                prev()
                result.append(token)
                next()
                openedBlock = true
            }
            result.append(token)
        }
        if openedBlock { result.append(token) }
        return Segment(result)
    }

    /// A new dispenser over ``nextSegment()``.
    package mutating func newFromNextSegment() -> Dispenser {
        Dispenser(nextSegment())
    }

    // MARK: - Errors

    /// `MESSAGE, at FILE:LINE[ import chain […]]` for the current token.
    package func err(_ message: String) -> CaddyfileError {
        CaddyfileError(message: message, file: file, line: line, importChain: token.imports)
    }

    /// Same as ``err(_:)``; kept for parity with Caddy's `WrapErr`, which wraps another error's
    /// text.
    package func wrapErr(_ error: any Error) -> CaddyfileError {
        err(String(describing: error))
    }

    /// The error for a missing argument or an unexpected `{`.
    package func argErr() -> CaddyfileError {
        if token.isOpenBrace { return err("unexpected token '{', expecting argument") }
        return err("wrong argument count or unexpected line ending after '\(val)'")
    }

    /// `syntax error: unexpected token 'X', expecting 'Y', at FILE:LINE import chain: [...]`.
    package func syntaxErr(_ expected: String) -> CaddyfileError {
        CaddyfileError(
            message: "syntax error: unexpected token '\(val)', expecting '\(expected)'", file: file,
            line: line, importChain: token.imports, style: .syntax)
    }

    /// `unexpected EOF, at FILE:LINE`.
    package func eofErr() -> CaddyfileError {
        err("unexpected EOF")
    }
}

/// A token's value as the closest scalar type (Caddy's `Dispenser.ScalarVal`).
package enum ScalarValue: Sendable, Hashable {
    /// A quoted token, or one that is no number or boolean.
    case string(String)
    /// A decimal integer (`strconv.Atoi`).
    case int(Int)
    /// A float (`strconv.ParseFloat`).
    case double(Double)
    /// `true`/`false` and the other forms of `strconv.ParseBool`.
    case bool(Bool)

    /// Quoted tokens are strings; otherwise int, then float, then bool, then string.
    package init(_ token: Token) {
        let text = token.text
        if token.isQuoted {
            self = .string(text)
        } else if let i = GoStrconv.atoi(text) {
            self = .int(i)
        } else if let d = GoStrconv.parseFloat(text) {
            self = .double(d)
        } else if let b = GoStrconv.parseBool(text) {
            self = .bool(b)
        } else {
            self = .string(text)
        }
    }
}

/// The few Go `strconv` functions the Caddyfile layer relies on.
package enum GoStrconv {
    /// `strconv.Atoi`: optional sign and decimal digits only, within 64 bits.
    package static func atoi(_ s: String) -> Int? {
        var bytes = Substring(s).utf8[...]
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        guard !bytes.isEmpty else { return nil }
        var value: Int = 0
        for b in bytes {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            let digit = Int(b - UInt8(ascii: "0"))
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (r, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
            if o1 || o2 { return nil }
            value = r
        }
        return value
    }

    /// `strconv.ParseFloat(s, 64)`, approximated by Swift's parser for decimal and special forms.
    package static func parseFloat(_ s: String) -> Double? {
        let lower = s.lowercased()
        switch lower {
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        case "nan": return .nan
        default: break
        }
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 < 0x80 && $0 != UInt8(ascii: "_") }) else {
            return nil
        }
        if lower.contains("n") || lower.contains("i") { return nil }
        return Double(s)
    }

    /// `strconv.ParseBool`.
    package static func parseBool(_ s: String) -> Bool? {
        switch s {
        case "1", "t", "T", "TRUE", "true", "True": return true
        case "0", "f", "F", "FALSE", "false", "False": return false
        default: return nil
        }
    }
}

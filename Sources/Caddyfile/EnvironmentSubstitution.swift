#if canImport(Glibc)
    import Glibc
#endif

/// `{$VAR}` and `{$VAR:default}` substitution, done on the raw bytes before lexing, exactly like
/// Caddy's `replaceEnvVars`:
///
/// - the name runs from `{$` to the next `}` (anything, even newlines or spaces);
/// - `{$}` (empty name) is left as it is;
/// - the name is split at the first `:`; an unset variable takes the default, or becomes empty;
/// - a substituted value is not scanned again (one level deep), but it may add tokens, quotes or
///   lines, since lexing happens afterwards;
/// - scanning stops at the first `{$` that has no `}` after it.
///
/// `{env.VAR}` is a runtime placeholder and is not touched.
package enum EnvironmentSubstitution {
    /// Returns `input` with every `{$…}` span replaced, looking variables up in `environment`.
    package static func apply(_ input: [UInt8], environment: [String: String]) -> [UInt8] {
        let open: [UInt8] = [UInt8(ascii: "{"), UInt8(ascii: "$")]
        let close = UInt8(ascii: "}")
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        // Byte-exact names, like Go (Swift's String keys would match canonically equivalent names).
        var byName: [[UInt8]: String] = [:]
        for (key, value) in environment { byName[Array(key.utf8)] = value }
        var offset = 0
        while let begin = firstIndex(of: open, in: input, from: offset) {
            let nameStart = begin + open.count
            guard let end = input[nameStart...].firstIndex(of: close) else { break }
            let name = input[nameStart..<end]
            out.append(contentsOf: input[offset..<begin])
            if name.isEmpty {
                out.append(contentsOf: input[begin...end])
            } else {
                out.append(contentsOf: value(for: name, environment: byName))
            }
            offset = end + 1
        }
        out.append(contentsOf: input[offset...])
        return out
    }

    /// The bytes that replace `{$name}`.
    private static func value(for span: ArraySlice<UInt8>, environment: [[UInt8]: String])
        -> [UInt8]
    {
        let colon = span.firstIndex(of: UInt8(ascii: ":"))
        let keyBytes = colon.map { span[span.startIndex..<$0] } ?? span
        if let found = environment[Array(keyBytes)] { return Array(found.utf8) }
        if let colon { return Array(span[(colon + 1)...]) }
        return []
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard needle.count == 2, from < haystack.count else { return nil }
        var i = from
        while i + 1 < haystack.count {
            if haystack[i] == needle[0] && haystack[i + 1] == needle[1] { return i }
            i += 1
        }
        return nil
    }

    /// The process environment as a dictionary (read from `environ`; entries that are not valid
    /// UTF-8 are skipped). Use it in production; tests pass their own dictionary.
    package static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        #if canImport(Glibc)
            var pointer = environ
            while let entry = pointer.pointee {
                if let text = String(validatingCString: entry),
                    let eq = text.utf8.firstIndex(of: UInt8(ascii: "="))
                {
                    let key = String(text[..<eq])
                    let value = String(text[text.index(after: eq)...])
                    // Like Go's os.LookupEnv, the first definition of a duplicated name wins.
                    if result[key] == nil { result[key] = value }
                }
                pointer += 1
            }
        #endif
        return result
    }
}

extension Lexer {
    /// Turns the raw heredoc text (everything after the opening line, up to and including the
    /// closing marker) into the token text: the whitespace before the closing marker is removed
    /// from the start of every line, `\r` is dropped, and the final newline is not included.
    ///
    /// A non-empty line that does not start with exactly that whitespace is an error, as in Caddy.
    func finalizeHeredoc(_ val: [Unicode.Scalar], marker: String) throws(CaddyfileError)
        -> [Unicode.Scalar]
    {
        let newline = Unicode.Scalar(UInt8(ascii: "\n"))
        let cr = Unicode.Scalar(UInt8(ascii: "\r"))
        let markerCount = marker.unicodeScalars.count
        let lastNewline = val.lastIndex(of: newline)
        let contentEnd = lastNewline.map { $0 + 1 } ?? 0
        let paddingStart = contentEnd
        let paddingEnd = max(paddingStart, val.count - markerCount)
        let padding = Array(val[paddingStart..<paddingEnd])

        // Split the content (up to the last newline) into lines; the piece after the final
        // newline is empty and ignored.
        var lines: [ArraySlice<Unicode.Scalar>] = []
        var start = 0
        var i = 0
        while i < contentEnd {
            if val[i] == newline {
                lines.append(val[start..<i])
                start = i + 1
            }
            i += 1
        }

        var out: [Unicode.Scalar] = []
        for (lineNumber, text) in lines.enumerated() {
            if text.isEmpty || (text.count == 1 && text.first == cr) {
                out.append(newline)
                continue
            }
            guard text.starts(with: padding) else {
                var clean = Array(text)
                while let last = clean.last, last == cr || last == newline { clean.removeLast() }
                throw Self.plain(
                    "mismatched leading whitespace in heredoc <<\(marker) on line "
                        + "#\(line + lineNumber + 1) [\(Runes.string(clean))], expected "
                        + "whitespace [\(Runes.string(padding))] to match the closing marker")
            }
            for c in text.dropFirst(padding.count) where c != cr { out.append(c) }
            out.append(newline)
        }
        if out.last == newline { out.removeLast() }
        return out
    }
}

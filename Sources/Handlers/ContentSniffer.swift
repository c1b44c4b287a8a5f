/// A subset of Go's `http.DetectContentType` (WHATWG MIME sniffing), used by `encode` when a
/// response to be compressed has no Content-Type (Caddy sniffs then). Covers HTML, XML, PDF,
/// PostScript, the common images, gzip/zip, WebAssembly, UTF BOMs, then text vs binary.
enum ContentSniffer {
    static func detect(_ data: UnsafeRawBufferPointer) -> StaticString {
        let d = UnsafeRawBufferPointer(rebasing: data[0..<min(data.count, 512)])
        // Leading whitespace is skipped for the HTML/XML checks.
        var ws = 0
        while ws < d.count, [0x09, 0x0A, 0x0C, 0x0D, 0x20].contains(d[ws]) { ws += 1 }
        let t = UnsafeRawBufferPointer(rebasing: d[ws...])
        let htmlTags: [StaticString] = [
            "<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME", "<H1", "<DIV", "<FONT", "<TABLE", "<A", "<STYLE",
            "<TITLE", "<B", "<BODY", "<BR", "<P", "<!--",
        ]
        for tag in htmlTags where htmlMatch(t, tag) { return "text/html; charset=utf-8" }
        if hasPrefix(t, "<?xml") { return "text/xml; charset=utf-8" }
        if hasPrefix(d, "%PDF-") { return "application/pdf" }
        if hasPrefix(d, "%!PS-Adobe-") { return "application/postscript" }
        if d.count >= 2, d[0] == 0xFE, d[1] == 0xFF { return "text/plain; charset=utf-16be" }
        if d.count >= 2, d[0] == 0xFF, d[1] == 0xFE { return "text/plain; charset=utf-16le" }
        if d.count >= 3, d[0] == 0xEF, d[1] == 0xBB, d[2] == 0xBF { return "text/plain; charset=utf-8" }
        if hasPrefix(d, "GIF87a") || hasPrefix(d, "GIF89a") { return "image/gif" }
        if d.count >= 8, d[0] == 0x89, hasPrefix(UnsafeRawBufferPointer(rebasing: d[1...]), "PNG\r\n\u{1A}\n") { return "image/png" }
        if d.count >= 3, d[0] == 0xFF, d[1] == 0xD8, d[2] == 0xFF { return "image/jpeg" }
        if d.count >= 12, hasPrefix(d, "RIFF"), hasPrefix(UnsafeRawBufferPointer(rebasing: d[8...]), "WEBPVP") { return "image/webp" }
        if hasPrefix(d, "BM") { return "image/bmp" }
        if d.count >= 4, d[0] == 0, d[1] == 0, d[2] == 1, d[3] == 0 { return "image/x-icon" }
        if d.count >= 3, d[0] == 0x1F, d[1] == 0x8B, d[2] == 0x08 { return "application/x-gzip" }
        if hasPrefix(d, "PK\u{03}\u{04}") { return "application/zip" }
        if d.count >= 4, d[0] == 0, d[1] == 0x61, d[2] == 0x73, d[3] == 0x6D { return "application/wasm" }
        for b in d where b <= 0x08 || b == 0x0B || (b >= 0x0E && b <= 0x1A) || (b >= 0x1C && b <= 0x1F) {
            return "application/octet-stream"
        }
        return "text/plain; charset=utf-8"
    }

    static func hasPrefix(_ d: UnsafeRawBufferPointer, _ p: StaticString) -> Bool {
        let n = p.utf8CodeUnitCount
        guard d.count >= n else { return false }
        for k in 0..<n where d[k] != p.utf8Start[k] { return false }
        return true
    }

    /// Go's htmlSig: case-insensitive tag followed by a space or `>`.
    static func htmlMatch(_ d: UnsafeRawBufferPointer, _ tag: StaticString) -> Bool {
        let n = tag.utf8CodeUnitCount
        guard d.count > n else { return false }
        for k in 0..<n {
            var c = d[k]
            let p = tag.utf8Start[k]
            if p >= 0x41 && p <= 0x5A { c &= 0xDF }
            if c != p { return false }
        }
        return d[n] == 0x20 || d[n] == 0x3E
    }
}

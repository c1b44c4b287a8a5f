/// Internal rewrites (Caddy's `rewrite`, `uri`, `try_files`, `handle_path`, `method`): the
/// request target or method changes in place, the original stays available for
/// `{http.request.orig_*}` and for the error routes, which see the original request again
/// (Caddy restores it before `handle_errors`, issue #3717).
extension HTTPRequest {
    /// Replaces the target with `path` plus, when `query` is not nil, `?query` (an empty query
    /// gives no `?`, as Go's `URL.RequestURI`). The bytes must already be escaped for the wire
    /// and must not point into `line` (build them in a scratch buffer). The first rewrite
    /// remembers the original target.
    package func setTarget(path: UnsafeRawBufferPointer, query: UnsafeRawBufferPointer?) {
        if originalTargetRange == nil { originalTargetRange = targetRange }
        let start = line.count
        HTTPFields.appendBytes(&line, path)
        let pathEnd = line.count
        if let q = query, !q.isEmpty {
            line.append(UInt8(ascii: "?"))
            HTTPFields.appendBytes(&line, q)
            queryRange = (pathEnd + 1)..<line.count
        } else {
            queryRange = nil
        }
        pathRange = start..<pathEnd
        targetRange = start..<line.count
    }

    /// Replaces the method (`method` directive). `bytes` must not point into `line`.
    package func setMethod(_ bytes: UnsafeRawBufferPointer) {
        if originalMethodRange == nil { originalMethodRange = methodRange }
        methodRange = appendLine(bytes)
        method = HTTPMethod.classify(bytes)
    }

    /// The target as the client sent it (before any rewrite).
    package var originalTarget: Range<Int> { originalTargetRange ?? targetRange }

    /// The method as the client sent it.
    package var originalMethod: Range<Int> { originalMethodRange ?? methodRange }

    /// Undoes every rewrite of the target and method (before the error routes run).
    package func restoreOriginal() {
        if let t = originalTargetRange {
            targetRange = t
            var q: Range<Int>? = nil
            var pathEnd = t.upperBound
            for i in t where line[i] == UInt8(ascii: "?") {
                pathEnd = i
                q = (i + 1)..<t.upperBound
                break
            }
            pathRange = t.lowerBound..<pathEnd
            queryRange = q
        }
        if let m = originalMethodRange {
            methodRange = m
            method = withLineBytes(m) { HTTPMethod.classify($0) }
        }
    }
}

import HTTPCore

/// Caddy's `request_body` handler (`caddyhttp/requestbody`) with `max_size`: lowers the
/// request's body limit (`HTTPRequest.bodyLimit`) and goes on. As in Caddy, where the body is
/// wrapped in Go's `http.MaxBytesReader`, nothing is checked up front: a handler that reads
/// the body (`reverse_proxy`) answers 413 once more than `maxSize` bytes arrive, whether the
/// length was declared or chunked; a handler that never reads it (`respond`) is unaffected.
/// Two limits on one request: the smaller wins (nested readers in Caddy).
package final class RequestBodyHandler: Handler, Sendable {
    let maxSize: Int64

    package init(maxSize: Int64) {
        self.maxSize = maxSize
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        // Caddy wraps the body only when there is one and the size is positive.
        if maxSize > 0, request.bodySource != nil, maxSize < request.bodyLimit {
            request.bodyLimit = maxSize
        }
        return .next
    }
}

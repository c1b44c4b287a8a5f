/// HTTP/2 error codes (RFC 9113 §7), as carried by RST_STREAM and GOAWAY.
package enum HTTP2ErrorCode: UInt32, Sendable, Equatable {
    case noError = 0x0
    case protocolError = 0x1
    case internalError = 0x2
    case flowControlError = 0x3
    case settingsTimeout = 0x4
    case streamClosed = 0x5
    case frameSizeError = 0x6
    case refusedStream = 0x7
    case cancel = 0x8
    case compressionError = 0x9
    case connectError = 0xA
    case enhanceYourCalm = 0xB
    case inadequateSecurity = 0xC
    case http11Required = 0xD

    /// The code for a raw value; unknown codes are treated as INTERNAL_ERROR (RFC 9113 §7:
    /// "Unknown or unsupported error codes MUST NOT trigger any special behavior").
    package init(code: UInt32) {
        self = HTTP2ErrorCode(rawValue: code) ?? .internalError
    }

    /// True when a stream reset with this code was caused by the peer (used to count resets
    /// the client provokes instead of sending, the "MadeYouReset" variant of rapid reset).
    var blamesPeer: Bool {
        switch self {
        case .protocolError, .flowControlError, .streamClosed, .frameSizeError, .refusedStream,
            .compressionError:
            return true
        default:
            return false
        }
    }
}

/// Why Berth cut a connection short. Every case but `badPreface` and `transport` sends a
/// GOAWAY with `errorCode` first.
package enum HTTP2Violation: Sendable, Equatable {
    /// More client resets per second than `HTTP2Limits.maxResetsPerSecond` (CVE-2023-44487).
    case rapidReset
    /// Resets above `maxResetPercent` of the streams opened in `resetRatioWindow`.
    case resetRatio
    /// More CONTINUATION frames in one header block than `maxContinuationFrames`.
    case continuationFlood
    /// A header block larger than `maxHeaderBlockBytes` on the wire.
    case headerBlockTooLarge
    /// A header block that decodes to more than `maxDecodedHeaderBytes` (HPACK bomb).
    case decodedHeadersTooLarge
    /// More PINGs per second than `maxPingsPerSecond`.
    case pingFlood
    /// More SETTINGS per second than `maxSettingsPerSecond`.
    case settingsFlood
    /// More empty DATA frames per second than `maxEmptyDataFramesPerSecond`.
    case emptyDataFlood
    /// nghttp2 held more unsent ACKs than `maxOutboundAcks` (NGHTTP2_ERR_FLOODED), or its own
    /// CONTINUATION limit fired (NGHTTP2_ERR_TOO_MANY_CONTINUATIONS).
    case outboundQueueFlood
    /// The bytes did not start with the client connection preface (RFC 9113 §3.4): closed
    /// without a GOAWAY, as the peer does not speak HTTP/2.
    case badPreface
    /// nghttp2 reported a protocol error it did not answer itself (the libnghttp2 error code).
    case library(Int32)

    /// The GOAWAY error code (RFC 9113 §7).
    package var errorCode: HTTP2ErrorCode {
        switch self {
        case .badPreface, .library: return .protocolError
        default: return .enhanceYourCalm
        }
    }
}

/// A GOAWAY frame the connection sent (RFC 9113 §6.8).
package struct HTTP2GoAway: Sendable, Equatable {
    /// The highest client stream id that was or may still be processed.
    package var lastStreamID: Int32
    package var errorCode: HTTP2ErrorCode

    package init(lastStreamID: Int32, errorCode: HTTP2ErrorCode) {
        self.lastStreamID = lastStreamID
        self.errorCode = errorCode
    }
}

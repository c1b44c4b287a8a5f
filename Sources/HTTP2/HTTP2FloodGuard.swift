/// Counts events in fixed windows of the monotonic clock.
struct WindowCounter: Sendable {
    private var start: UInt64 = 0
    private(set) var count = 0
    private var started = false

    /// Adds `n` events at `now`; starts a new window when `window` nanoseconds have passed.
    /// Returns the count in the current window.
    @inline(__always)
    mutating func add(_ n: Int, now: UInt64, window: UInt64) -> Int {
        roll(now: now, window: window)
        count += n
        return count
    }

    @inline(__always)
    private mutating func roll(now: UInt64, window: UInt64) {
        if !started || now &- start >= window {
            started = true
            start = now
            count = 0
        }
    }
}

/// Streams opened and resets within one window, for the reset-ratio rule.
struct RatioWindow: Sendable {
    private var start: UInt64 = 0
    private var started = false
    private(set) var streams = 0
    private(set) var resets = 0

    @inline(__always)
    private mutating func roll(now: UInt64, window: UInt64) {
        if !started || now &- start >= window {
            started = true
            start = now
            streams = 0
            resets = 0
        }
    }

    mutating func addStream(now: UInt64, window: UInt64) {
        roll(now: now, window: window)
        streams += 1
    }

    mutating func addReset(now: UInt64, window: UInt64) {
        roll(now: now, window: window)
        resets += 1
    }
}

/// The connection's abuse accounting: fed every client frame header by `HTTP2FrameScanner`
/// (before nghttp2 sees the frame) and the resets nghttp2 sends because of the client.
/// Returns the violation that must end the connection, or nil.
///
/// What it enforces (RFC 9113 §10.5 "Denial-of-Service Considerations"):
/// - rapid reset (CVE-2023-44487): client RST_STREAMs, refused streams and resets the client
///   provokes (CVE-2025-8671 "MadeYouReset") per second, and as a share of opened streams;
/// - CONTINUATION flood (CVE-2024-28182 et al.): CONTINUATION frames and encoded bytes per
///   header block, counted on frame headers so the payload is never decoded;
/// - PING / SETTINGS floods (CVE-2019-9512, -9515) per second;
/// - empty DATA frames (CVE-2019-9518) per second, padding-only frames included.
///
/// There is deliberately no cap on streams over a connection's lifetime.
package struct HTTP2FloodGuard: Sendable {
    let limits: HTTP2Limits
    private let second: UInt64 = 1_000_000_000
    private let ratioWindow: UInt64

    private var resets = WindowCounter()
    private var pings = WindowCounter()
    private var settings = WindowCounter()
    private var emptyData = WindowCounter()
    private var ratio = RatioWindow()

    /// Encoded bytes and CONTINUATION frames of the current header block.
    private var blockBytes = 0
    private var continuations = 0
    /// The DATA frame whose Pad Length byte is awaited.
    private var paddedDataLength = 0
    private var paddedDataEndsStream = false
    /// Highest client stream id seen in a HEADERS frame.
    package private(set) var lastStreamID: UInt32 = 0
    /// Streams the client opened (for the reset ratio and tests).
    package private(set) var streamsOpened = 0
    /// Resets counted so far (client RST_STREAM + resets the client caused).
    package private(set) var resetsCounted = 0

    package init(limits: HTTP2Limits) {
        self.limits = limits
        ratioWindow = max(1, limits.resetRatioWindow.nanoseconds)
    }

    /// Checks one client frame header.
    package mutating func onFrame(_ h: HTTP2FrameHeader, now: UInt64) -> HTTP2Violation? {
        switch h.type {
        case HTTP2FrameHeader.headers:
            blockBytes = h.length
            continuations = 0
            if blockBytes > limits.maxHeaderBlockBytes { return .headerBlockTooLarge }
            if h.streamID & 1 == 1 && h.streamID > lastStreamID {
                lastStreamID = h.streamID
                streamsOpened += 1
                ratio.addStream(now: now, window: ratioWindow)
            }
        case HTTP2FrameHeader.continuation:
            // RFC 9113 §6.10: any number of CONTINUATION frames may follow; we allow a few.
            continuations += 1
            blockBytes += h.length
            if continuations > limits.maxContinuationFrames { return .continuationFlood }
            if blockBytes > limits.maxHeaderBlockBytes { return .headerBlockTooLarge }
        case HTTP2FrameHeader.data:
            if h.length == 0 && !h.has(HTTP2FrameHeader.endStream) {
                if emptyData.add(1, now: now, window: second) > limits.maxEmptyDataFramesPerSecond {
                    return .emptyDataFlood
                }
            } else if h.has(HTTP2FrameHeader.padded) {
                paddedDataLength = h.length
                paddedDataEndsStream = h.has(HTTP2FrameHeader.endStream)
            }
        case HTTP2FrameHeader.rstStream:
            return onReset(now: now)
        case HTTP2FrameHeader.ping:
            if !h.has(HTTP2FrameHeader.ack),
                pings.add(1, now: now, window: second) > limits.maxPingsPerSecond
            {
                return .pingFlood
            }
        case HTTP2FrameHeader.settings:
            if !h.has(HTTP2FrameHeader.ack),
                settings.add(1, now: now, window: second) > limits.maxSettingsPerSecond
            {
                return .settingsFlood
            }
        default:
            break
        }
        return nil
    }

    /// The Pad Length byte of a padded DATA frame: a frame whose payload is all padding
    /// carries no data (RFC 9113 §6.1) and counts as empty.
    package mutating func onPadLength(_ pad: UInt8, now: UInt64) -> HTTP2Violation? {
        let dataLength = paddedDataLength - 1 - Int(pad)
        if dataLength <= 0 && !paddedDataEndsStream {
            if emptyData.add(1, now: now, window: second) > limits.maxEmptyDataFramesPerSecond {
                return .emptyDataFlood
            }
        }
        return nil
    }

    /// A stream ended by a reset: one the client sent, or one we sent because of the client
    /// (refused stream, stream-level protocol or flow-control error).
    package mutating func onReset(now: UInt64) -> HTTP2Violation? {
        resetsCounted += 1
        if resets.add(1, now: now, window: second) > limits.maxResetsPerSecond { return .rapidReset }
        ratio.addReset(now: now, window: ratioWindow)
        let r = ratio.resets
        if r > limits.minResetsForRatio && r * 100 > ratio.streams * limits.maxResetPercent {
            return .resetRatio
        }
        return nil
    }
}

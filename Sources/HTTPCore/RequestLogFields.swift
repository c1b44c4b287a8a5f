import IOCore

/// How an extra access-log value is written: a JSON string (escaped by the writer), a JSON
/// literal as it is (number, `true`, `false`), or `null`.
package enum LogValueKind: UInt8, Sendable {
    case string, literal, null
}

/// An extra access-log field (`log_append`): its key, and its value computed when the entry is
/// written (Caddy adds such fields after the rest of the chain has run).
package protocol AccessLogFieldSource: AnyObject, Sendable {
    /// The field name (raw bytes; the writer escapes them).
    var logKey: [UInt8] { get }
    /// Appends the value's bytes to `out` and says how to write them.
    func appendLogValue(_ request: HTTPRequest, _ response: HTTPResponse, into out: ByteBuffer) -> LogValueKind
}

/// The extra fields of one request's access-log entry, in the order Caddy writes them: the
/// ones taken early (`log_append <key …`) in the order they were taken, then the others in the
/// reverse order of their handlers (each is added on the way back up the chain). Empty (no
/// storage) for requests that use none; storage is kept between requests.
package struct RequestLogFields {
    package struct Entry {
        package let source: any AccessLogFieldSource
        /// Taken early: the value is `bytes[start..<start+count]` of kind `kind`.
        package let early: Bool
        package let kind: LogValueKind
        package let start: Int32
        package let count: Int32
    }
    package private(set) var entries: [Entry] = []
    package private(set) var bytes: [UInt8] = []

    package init() {}

    @inline(__always) package var isEmpty: Bool { entries.isEmpty }

    package mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }

    /// A field whose value is computed when the entry is written.
    package mutating func addLate(_ source: any AccessLogFieldSource) {
        entries.append(Entry(source: source, early: false, kind: .null, start: 0, count: 0))
    }

    /// A field whose value was taken now.
    package mutating func addEarly(_ source: any AccessLogFieldSource, _ kind: LogValueKind, _ value: UnsafeRawBufferPointer) {
        let s = Int32(bytes.count)
        HTTPFields.appendBytes(&bytes, value)
        entries.append(Entry(source: source, early: true, kind: kind, start: s, count: Int32(value.count)))
    }
}

/// Placeholders a handler defines for the rest of the request (Caddy's `repl.Map`, used by
/// `map`): asked in the order they were added, after the built-in placeholders.
package protocol PlaceholderProvider: AnyObject, Sendable {
    /// Appends the value of the placeholder `name` (without braces) and returns true when this
    /// provider defines it (possibly empty); false (nothing appended) otherwise.
    func provide(_ name: UnsafeRawBufferPointer, _ request: HTTPRequest, into out: ByteBuffer) -> Bool
}

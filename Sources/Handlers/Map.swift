import HTTPCore
import IOCore

/// Caddy's `map` handler (`caddyhttp/map/map.go`): defines its destination placeholders for
/// the rest of the request, evaluated each time one is used (lazily, from the source as it is
/// then). The first mapping whose output for that destination is not "no value" (`-`) and
/// whose input equals the source (or whose regexp matches somewhere in it) gives the value:
/// an exact input's output expands placeholders, a regexp's output expands `$1`, `${name}`
/// from the match (no placeholders, as Caddy). Otherwise the destination's default (expanded),
/// else empty.
package final class MapHandler: Handler, PlaceholderProvider {
    package enum Output: Sendable {
        /// For an exact input: expanded like Caddy's ReplaceAll.
        case template(Template)
        /// For a regexp input: Go's `Regexp.Expand` template.
        case expand([UInt8])
    }

    package struct Mapping: Sendable {
        let input: [UInt8]
        let regex: Regex?
        let outputs: [Output?]
        package init(input: String, regex: Regex?, outputs: [String?]) {
            self.input = Array(input.utf8)
            self.regex = regex
            self.outputs = outputs.map { o in
                o.map { regex == nil ? .template(Template($0, keepUnknown: false)) : .expand(Array($0.utf8)) }
            }
        }
    }

    let source: Template
    let destinations: [[UInt8]]
    let mappings: [Mapping]
    let defaults: [Template]

    /// `destinations` are names without braces.
    package init(source: String, destinations: [String], mappings: [Mapping], defaults: [String]) {
        self.source = Template(source, keepUnknown: false)
        self.destinations = destinations.map { Array($0.utf8) }
        self.mappings = mappings
        self.defaults = defaults.map { Template($0, keepUnknown: false) }
    }

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        request.placeholderProviders.append(self)
        return .next
    }

    package func provide(_ name: UnsafeRawBufferPointer, _ r: HTTPRequest, into out: ByteBuffer) -> Bool {
        guard let idx = destinations.firstIndex(where: { $0.elementsEqual(name) }) else { return false }
        // The source, expanded after `out`'s end, then moved to the stack: outputs are
        // written to `out` next.
        let mark = out.writerIndex
        source.expand(r, into: out)
        let n = out.writerIndex - mark
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(n, 1)) { tmp in
            for k in 0..<n { tmp[k] = out.base[mark + k] }
            out.writerIndex = mark
            let input = UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: tmp[0..<n]))
            for m in mappings {
                guard idx < m.outputs.count, let output = m.outputs[idx] else { continue }
                if let re = m.regex {
                    var hit = false
                    re.withCaptures { caps in
                        guard re.match(input, captures: caps) else { return }
                        if case .expand(let t) = output { t.withUnsafeBytes { re.expand($0, input, caps, into: out) } }
                        hit = true
                    }
                    if hit { return }
                    continue
                }
                if m.input.elementsEqual(input) {
                    if case .template(let t) = output { t.expand(r, into: out) }
                    return
                }
            }
            if idx < defaults.count { defaults[idx].expand(r, into: out) }
        }
        return true
    }
}

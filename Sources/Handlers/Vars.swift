import HTTPCore
import IOCore

/// Caddy's `vars` handler (`vars`, and `root`, which is `vars {root: …}`): sets request
/// variables read by `{http.vars.*}`, the `vars` matchers, `log_append`, the file matcher and
/// `file_server`. String values expand placeholders (unknown ones become empty); numbers and
/// booleans keep their type (`log_append` writes them as such). `log_skip` set to `true`
/// drops the request's access-log entry (Caddy's `log_skip` directive is this variable).
package final class VarsHandler: Handler {
    package enum Value: Sendable {
        case template(Template)
        /// A number or boolean: its JSON text.
        case literal([UInt8])
        case null
        /// A list of strings: only `access_logger_names` (`log_name`) takes one.
        case names([String])
    }
    let entries: [(key: [UInt8], keyTemplate: Template?, value: Value)]

    package init(_ entries: [(String, Template)]) {
        self.entries = entries.map { (Array($0.0.utf8), nil, .template($0.1)) }
    }

    package init(typed entries: [(String, Value)]) {
        self.entries = entries.map { e in
            let t = e.0.contains("{") ? Template(e.0, keepUnknown: false) : nil
            return (Array(e.0.utf8), t.flatMap { $0.isStatic ? nil : $0 }, e.1)
        }
    }

    static let logSkipKey: [UInt8] = Array("log_skip".utf8)
    static let trueBytes: [UInt8] = Array("true".utf8)
    static let loggerNamesKey: [UInt8] = Array("access_logger_names".utf8)

    package func handle(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        let s = response.scratch
        for e in entries {
            s.clear()
            var kind = LogValueKind.string
            switch e.value {
            case .template(let t): t.expand(request, into: s)
            case .literal(let b):
                s.append(b)
                kind = .literal
            case .null: kind = .null
            case .names(let names):
                if e.key == VarsHandler.loggerNamesKey { request.accessLoggerNames = names }
                continue
            }
            let valueEnd = s.writerIndex
            if let kt = e.keyTemplate {
                kt.expand(request, into: s)
                let key = UnsafeRawBufferPointer(start: s.base + valueEnd, count: s.writerIndex - valueEnd)
                request.vars.set(key, UnsafeRawBufferPointer(start: s.base, count: valueEnd), kind: kind)
                if key.elementsEqual(VarsHandler.logSkipKey) { request.logSkip = kind == .literal && s.readable.prefix(valueEnd).elementsEqual(VarsHandler.trueBytes) }
            } else {
                e.key.withUnsafeBytes { request.vars.set($0, s.readable, kind: kind) }
                if e.key == VarsHandler.logSkipKey { request.logSkip = kind == .literal && s.readable.elementsEqual(VarsHandler.trueBytes) }
            }
        }
        s.clear()
        return .next
    }
}

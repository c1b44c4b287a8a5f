/// The tokens of one directive: its line, plus every token of the block it opens, braces included.
package struct Segment: Sendable, Hashable, RandomAccessCollection {
    /// The tokens, the directive name first.
    package var tokens: [Token]

    /// Creates a segment from tokens.
    package init(_ tokens: [Token]) { self.tokens = tokens }

    /// The directive name (the first token's text), or `""` for an empty segment.
    package var directive: String { tokens.first?.text ?? "" }

    /// 0.
    package var startIndex: Int { tokens.startIndex }
    /// The token count.
    package var endIndex: Int { tokens.endIndex }
    /// The token at `position` (which must be valid, as for any collection).
    package subscript(position: Int) -> Token { tokens[position] }
}

/// A block of the Caddyfile: site addresses (keys) and the directives inside.
package struct ServerBlock: Sendable, Hashable {
    /// Whether the block was written with braces.
    package var hasBraces: Bool
    /// The site addresses (for a named route, its name; empty for the global options block).
    package var keys: [Token]
    /// One segment per directive.
    package var segments: [Segment]
    /// Whether this is a named route `&(name) { … }` (its only segment holds the whole block).
    package var isNamedRoute: Bool

    /// Creates a server block.
    package init(
        hasBraces: Bool = false, keys: [Token] = [], segments: [Segment] = [],
        isNamedRoute: Bool = false
    ) {
        self.hasBraces = hasBraces
        self.keys = keys
        self.segments = segments
        self.isNamedRoute = isNamedRoute
    }

    /// Whether the block has no keys, i.e. it is (or claims to be) the global options block.
    /// Caddy accepts such a block only as the very first block; see
    /// ``CaddyfileError/globalOptionsNotFirst()``.
    package var isGlobalOptions: Bool { keys.isEmpty }

    /// The keys' texts.
    package var keyTexts: [String] { keys.map(\.text) }

    /// A dispenser over every segment whose directive is `name`, concatenated.
    package func dispenseDirective(_ name: String) -> Dispenser {
        var tokens: [Token] = []
        for segment in segments where segment.directive.bytesEqual(name) {
            tokens.append(contentsOf: segment.tokens)
        }
        return Dispenser(tokens)
    }
}

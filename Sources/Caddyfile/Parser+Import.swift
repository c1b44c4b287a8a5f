extension ParserState {
    /// Replaces `import PATTERN [ARGS…] [{ BLOCK }]` (the cursor is on `import`) with the tokens of
    /// the snippet or files it names, leaving the cursor just before the first imported token.
    ///
    /// `nestingIn` is 0 for an import between server blocks (then snippet definitions inside the
    /// imported tokens are copied verbatim, without argument substitution) and 1 inside a block.
    mutating func doImport(nesting nestingIn: Int) throws(CaddyfileError) {
        guard d.nextArg() else { throw d.argErr() }
        let importPattern = d.val
        if importPattern.isEmpty { throw d.err("Import requires a non-empty filepath") }
        let args = d.remainingArgs()
        let replacer = ImportArguments(args: args)

        // Tokens of a block following the import: {block} and {blocks.NAME} refer to them.
        var blockTokens: [Token] = []
        let startNesting = d.nesting
        while d.nextBlock(startNesting) { blockTokens.append(d.token) }
        let blockMapping = try mapBlocks(blockTokens)

        let beforeEnd = d.cursor - 1 - args.count - blockTokens.count
        let tokensBefore = Array(d.tokens[clamped: 0..<beforeEnd])
        let tokensAfter = Array(d.tokens[clamped: (d.cursor + 1)..<d.tokens.count])

        var importedTokens: [Token]
        var nodes: [String] = []
        if let snippet = definedSnippets[Array(importPattern.utf8)] {
            importedTokens = snippet
            if let first = snippet.first { nodes.append("\(first.file):\(first.snippetName)") }
        } else {
            (importedTokens, nodes) = try importFiles(importPattern)
        }

        var nodeName = d.file
        if !d.token.snippetName.isEmpty { nodeName += ":\(d.token.snippetName)" }
        importGraph.addNode(nodeName)
        importGraph.addNodes(nodes)
        do {
            try importGraph.addEdges(from: nodeName, to: nodes)
        } catch {
            importGraph.removeNodes(nodes)
            throw error
        }

        let copied = substitute(
            importedTokens, nesting: nestingIn, args: args, replacer: replacer,
            blockTokens: blockTokens, blockMapping: blockMapping)

        importedTokenCount += copied.count
        if importedTokenCount > options.maxImportedTokens {
            throw d.err(
                "imports expand to more than \(options.maxImportedTokens) tokens; check for snippets "
                    + "that import each other repeatedly")
        }

        d.tokens = tokensBefore + copied + tokensAfter
        d.cursor = max(-1, d.cursor - (args.count + blockTokens.count + 1))
    }

    /// Splits an import's block into `NAME args… [{ … }]` entries for `{blocks.NAME}`.
    private func mapBlocks(_ blockTokens: [Token]) throws(CaddyfileError) -> [[UInt8]: [Token]] {
        var mapping: [[UInt8]: [Token]] = [:]
        guard !blockTokens.isEmpty else { return mapping }
        var bd = Dispenser(blockTokens)
        while bd.next() {
            let key = bd.val
            if bd.token.isOpenBrace { throw d.err("anonymous blocks are not supported") }
            var tokens = bd.remainingArgsAsTokens()
            let start = bd.nesting
            while bd.nextBlock(start) { tokens.append(bd.token) }
            mapping[Array(key.utf8)] = tokens
        }
        return mapping
    }

    /// Expands a file import: resolves the pattern against the importing file's directory, globs,
    /// and lexes each match. Returns the tokens and the graph nodes (the matched paths).
    private mutating func importFiles(_ importPattern: String) throws(CaddyfileError)
        -> ([Token], [String])
    {
        let resolver = options.importResolver
        let currentFile = d.file
        let absFile: String
        do {
            absFile = try resolver.absolutePath(currentFile)
        } catch {
            throw d.err("Failed to get absolute path of file: \(currentFile): \(error)")
        }
        let globPattern =
            GoPath.isAbs(importPattern)
            ? importPattern : GoPath.join(GoPath.dir(absFile), importPattern)

        let bytes = Array(globPattern.utf8)
        let stars = bytes.filter { $0 == UInt8(ascii: "*") }.count
        let questions = bytes.filter { $0 == UInt8(ascii: "?") }.count
        if stars > 1 || questions > 1
            || (bytes.contains(UInt8(ascii: "[")) && bytes.contains(UInt8(ascii: "]")))
        {
            throw d.err("Glob pattern may only contain one wildcard (*), but has others: \(globPattern)")
        }

        var matches: [String]
        do {
            matches = try resolver.glob(globPattern)
        } catch {
            throw d.err("Failed to use import pattern \(importPattern): \(error)")
        }
        if matches.isEmpty {
            let meta = bytes.contains {
                $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[")
                    || $0 == UInt8(ascii: "]")
            }
            if meta {
                warnings.append(
                    CaddyfileWarning(
                        message: "No files matching import glob pattern", subject: importPattern))
            } else {
                throw d.err("File to import not found: \(importPattern)")
            }
        } else if Self.lastPathSegment(globPattern).bytesHavePrefix("*") {
            // A pattern like dir/* skips hidden files.
            matches = matches.filter { !Self.lastPathSegment($0).bytesHavePrefix(".") }
        }

        var tokens: [Token] = []
        for file in matches {
            tokens.append(contentsOf: try importSingleFile(file))
        }
        return (tokens, matches)
    }

    private static func lastPathSegment(_ path: String) -> String {
        let bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return String(decoding: bytes[(slash + 1)...], as: UTF8.self)
    }

    /// Reads and lexes one imported file; its tokens carry its absolute path.
    private mutating func importSingleFile(_ file: String) throws(CaddyfileError) -> [Token] {
        let resolver = options.importResolver
        let input: [UInt8]
        do {
            input = try resolver.readFile(file)
        } catch {
            switch error.stage {
            case .open: throw d.err("Could not import \(file): \(error)")
            case .read: throw d.err("Could not read imported file \(file): \(error)")
            }
        }
        if input.isEmpty || Runes.trimSpace(input).isEmpty {
            warnings.append(CaddyfileWarning(message: "Import file is empty", subject: file))
            return []
        }
        var tokens: [Token]
        do {
            tokens = try options.tokenize(input, filename: file)
        } catch {
            throw d.err("Could not read tokens while importing \(file): \(error)")
        }
        let absolute: String
        do {
            absolute = try resolver.absolutePath(file)
        } catch {
            throw d.err("Failed to get absolute path of file: \(file): \(error)")
        }
        for i in tokens.indices { tokens[i].file = absolute }
        return tokens
    }

    /// Stamps the import chain on imported tokens and substitutes `{args…}`, `{block}` and
    /// `{blocks.NAME}`. Snippet definitions met at the top level are copied untouched.
    private func substitute(
        _ importedTokens: [Token], nesting nestingIn: Int, args: [String],
        replacer: ImportArguments, blockTokens: [Token], blockMapping: [[UInt8]: [Token]]
    ) -> [Token] {
        var copied: [Token] = []
        copied.reserveCapacity(importedTokens.count)
        var nesting = nestingIn
        var maybeSnippet = false
        var maybeSnippetID = false
        var index = 0
        let site = "\(d.file):\(d.line)"

        for (i, original) in importedTokens.enumerated() {
            var token = original
            if token.snippetName.isEmpty {
                token.imports.append("\(site) (import)")
            } else {
                token.imports.append("\(site) (import \(token.snippetName))")
            }

            // Naive detection of "(name) {" snippet definitions at the top level.
            if !maybeSnippet && nesting == 0 {
                // Caddy indexes the last copied token here and would crash when none was copied
                // yet (e.g. an empty variadic first); treat that as a new line.
                let newLine = i == 0 || (copied.last.map { $0.isFollowedOnNewLine(by: token) } ?? true)
                index = newLine ? 0 : index + 1
                if index == 0 && token.text.utf8.count >= 3 && token.text.bytesHavePrefix("(")
                    && token.text.bytesHaveSuffix(")")
                {
                    maybeSnippetID = true
                }
            }

            if token.isOpenBrace {
                nesting += 1
                if index == 1 && maybeSnippetID && nesting == 1 {
                    maybeSnippet = true
                    maybeSnippetID = false
                }
            } else if token.isCloseBrace {
                nesting -= 1
                if nesting == 0 && maybeSnippet { maybeSnippet = false }
            }

            var blockReplacement: [Token]? = nil
            if token.text.bytesEqual("{block}") {
                blockReplacement = blockTokens
            } else if token.text.bytesHavePrefix("{blocks.") && token.text.bytesHaveSuffix("}") {
                let bytes = Array(token.text.utf8)
                let key = Array(bytes[clamped: 8..<(bytes.count - 1)])
                blockReplacement = blockMapping[key] ?? []
            }
            if let replacement = blockReplacement {
                if maybeSnippet {
                    copied.append(token)
                } else {
                    copied.append(contentsOf: replacement)
                }
                continue
            }

            if maybeSnippet {
                copied.append(token)
                continue
            }

            if let range = replacer.variadicRange(token.text) {
                for arg in args[range] {
                    token.text = arg
                    copied.append(token)
                }
            } else {
                token.text = replacer.replaceKnown(token.text)
                copied.append(token)
            }
        }
        return copied
    }
}

extension Array {
    /// The elements in `range` intersected with the valid indices (never traps).
    subscript(clamped range: Range<Int>) -> ArraySlice<Element> {
        let lower = Swift.min(Swift.max(range.lowerBound, 0), count)
        let upper = Swift.min(Swift.max(range.upperBound, lower), count)
        return self[lower..<upper]
    }
}

/// libFuzzer entry: lexes, parses (snippet imports only; file imports are refused), walks every
/// segment with a ``Dispenser``, and formats `data`. It must never crash or hang, whatever the
/// bytes. Wire it with `@_cdecl("LLVMFuzzerTestOneInput")` in the fuzz target.
package func caddyfileFuzzOne(_ data: UnsafeRawBufferPointer) {
    let input = Array(data)
    let parser = CaddyfileParser(
        environment: ["FUZZ": "value", "MULTI": "a b\n}\n{", "EMPTY": ""],
        importResolver: NoFileImportResolver(),
        maxImportedTokens: 4_096)

    _ = try? parser.tokenize(input, filename: "Caddyfile")

    if let blocks = try? parser.parse(input, filename: "Caddyfile") {
        for block in blocks {
            for segment in block.segments {
                exerciseDispenser(Dispenser(segment))
            }
        }
    }

    let formatted = CaddyfileFormatter.format(input)
    _ = CaddyfileFormatter.format(formatted)
    _ = CaddyfileFormatter.firstUnformattedLine(input)
}

/// Drives the dispenser the way directive parsers do.
private func exerciseDispenser(_ start: Dispenser) {
    var d = start
    var steps = 0
    while d.next() && steps < 10_000 {
        steps += 1
        _ = d.remainingArgs()
        let nesting = d.nesting
        while d.nextBlock(nesting) && steps < 10_000 {
            steps += 1
            _ = d.countRemainingArgs()
            var sub = d.newFromNextSegment()
            _ = sub.next()
            _ = sub.argErr().description
            _ = sub.syntaxErr("}").description
        }
    }
    d.reset()
    _ = d.next()
    _ = d.args(count: 2)
    _ = d.allArgs(count: 1)
    _ = d.scalarVal
    _ = d.deleteN(2)
    _ = d.delete()
}

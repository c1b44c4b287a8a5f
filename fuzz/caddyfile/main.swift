// libFuzzer target for the Caddyfile lexer, parser (snippet imports only), dispenser and
// formatter. The whole input is the Caddyfile text; see `caddyfileFuzzOne` in
// Sources/Caddyfile/Fuzz.swift for what is exercised. Checked on every input: no crash,
// no sanitizer report, no hang.
//
// Build and run with fuzz/build-caddyfile.sh and fuzz/run-caddyfile.sh.

import Caddyfile

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    caddyfileFuzzOne(UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size))
    return 0
}

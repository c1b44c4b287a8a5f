import Testing
@testable import Server

/// sd-daemon(3) `<N>` prefixes for log lines written to a journald stream.
@Suite struct JournalPriorityTests {
    func prefixed(_ text: String) -> String {
        var out: [UInt8] = []
        Array(text.utf8).withUnsafeBytes { LogOutput.appendWithPriorities($0, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func jsonLevels() {
        for (level, digit) in [("debug", 7), ("info", 6), ("warn", 4), ("error", 3), ("dpanic", 2), ("panic", 2), ("fatal", 2)] {
            let line = "{\"level\":\"\(level)\",\"ts\":1.5,\"msg\":\"x\"}\n"
            #expect(prefixed(line) == "<\(digit)>" + line, "\(level)")
        }
    }

    @Test func consoleLevels() {
        for (level, digit) in [("DEBUG", 7), ("INFO", 6), ("WARN", 4), ("ERROR", 3), ("FATAL", 2)] {
            let line = "2026/11/29 18:00:00.000\t\(level)\thttp.log.access\thandled request\n"
            #expect(prefixed(line) == "<\(digit)>" + line, "\(level)")
        }
    }

    @Test func everyLineOfABatchGetsItsOwnPriority() {
        let batch = "{\"level\":\"info\",\"msg\":\"a\"}\n{\"level\":\"error\",\"msg\":\"b\"}\n{\"level\":\"warn\",\"msg\":\"c\"}"
        #expect(prefixed(batch) == "<6>{\"level\":\"info\",\"msg\":\"a\"}\n<3>{\"level\":\"error\",\"msg\":\"b\"}\n<4>{\"level\":\"warn\",\"msg\":\"c\"}")
    }

    @Test func unknownOrMissingLevelIsInfo() {
        #expect(prefixed("plain text\n") == "<6>plain text\n")
        #expect(prefixed("{\"level\":\"verbose\"}\n") == "<6>{\"level\":\"verbose\"}\n")
        #expect(prefixed("{\"msg\":\"error\"}\n") == "<6>{\"msg\":\"error\"}\n")
        #expect(prefixed("") == "")
    }
}

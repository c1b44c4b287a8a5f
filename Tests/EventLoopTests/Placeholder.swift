import Testing

@Test func placeholderEventLoop() { #expect(Bool(true)) }

import Testing

@Test func placeholderHTTPCore() { #expect(Bool(true)) }

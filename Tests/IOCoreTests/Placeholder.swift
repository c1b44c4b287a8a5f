import Testing

@Test func placeholderIOCore() { #expect(Bool(true)) }

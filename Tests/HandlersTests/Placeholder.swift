import Testing

@Test func placeholderHandlers() { #expect(Bool(true)) }

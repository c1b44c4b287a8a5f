import Testing

@Test func placeholderSystemD() { #expect(Bool(true)) }

import Testing

@Test func placeholderCaddyfile() { #expect(Bool(true)) }

import Testing

@testable import Upstream

@Suite("UpstreamRegistry")
struct UpstreamRegistryTests {
    private func proxy(_ endpoints: [UpstreamAddress.Endpoint]) -> ReverseProxy {
        var c = ProxyConfiguration()
        c.upstreams = endpoints.map { UpstreamAddress(endpoint: $0) }
        return ReverseProxy(c)
    }

    private func entry(_ address: String) -> (address: String, numRequests: Int, fails: Int)? {
        UpstreamRegistry.snapshot().first { $0.address == address }
    }

    @Test func oneEntryPerAddressSummedOverHandlersAndGoneWithThem() {
        // Addresses unique to this test: other tests' proxies may be alive at the same time.
        var a: ReverseProxy? = proxy([.tcp(host: "registry-a.test", port: 81), .unix(path: "/run/registry.sock")])
        let b = proxy([.tcp(host: "registry-a.test", port: 81), .tcp(host: "::1", port: 82)])
        a!.hosts[0].inFlight.wrappingAdd(2, ordering: .relaxed)
        b.hosts[0].inFlight.wrappingAdd(1, ordering: .relaxed)
        b.hosts[0].fails.wrappingAdd(3, ordering: .relaxed)
        let names = UpstreamRegistry.snapshot().map(\.address)
        #expect(names.filter { $0 == "registry-a.test:81" }.count == 1)
        let shared = entry("registry-a.test:81")
        #expect(shared?.numRequests == 3 && shared?.fails == 3)
        #expect(entry("unix//run/registry.sock")?.numRequests == 0)
        #expect(entry("[::1]:82") != nil)
        // First configured first.
        let i = names.firstIndex(of: "registry-a.test:81")!, j = names.firstIndex(of: "unix//run/registry.sock")!
        #expect(i < j)
        a = nil
        #expect(entry("unix//run/registry.sock") == nil)
        #expect(entry("registry-a.test:81")?.numRequests == 1)
        withExtendedLifetime(b) {}
    }
}

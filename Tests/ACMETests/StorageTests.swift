import JSON
import Foundation
import IOCore
import TLS
import Testing

@testable import ACME

func temporaryDirectory() -> String {
    var template = Array((NSTemporaryDirectory() + "/berth-acme-XXXXXX").utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}

@Suite("Storage (certmagic layout, flock)")
struct StorageTests {
    @Test func certificateRoundTripWithModes() throws {
        let s = ACMEStorage(root: temporaryDirectory() + "/berth")
        let cert = try LocalTestCA.leaf(["example.com"])
        let meta = JSONValue.object([("names", .array([.string("example.com")]))])
        try s.saveCertificate(ca: "localhost-14000", name: "example.com", chainPEM: cert.certificateChainPEM(),
                              keyPEM: cert.privateKeyPEM(), metadata: meta)
        let p = s.certificatePaths(ca: "localhost-14000", name: "example.com")
        #expect(p.crt == s.root + "/certificates/localhost-14000/example.com/example.com.crt")
        var st = stat()
        stat(p.key, &st)
        #expect(st.st_mode & 0o777 == 0o600)
        stat(s.certificateDirectory(ca: "localhost-14000", name: "example.com"), &st)
        #expect(st.st_mode & 0o777 == 0o700)
        let back = try #require(s.loadCertificate(ca: "localhost-14000", name: "example.com"))
        #expect(back.certificate.leafPEM() == cert.leafPEM() && !back.revoked)
        #expect(back.metadata["names"] == meta["names"])
        try s.updateMetadata(ca: "localhost-14000", name: "example.com") { m in
            .object((m.objectValue ?? []) + [("revoked", .bool(true))])
        }
        #expect(s.loadCertificate(ca: "localhost-14000", name: "example.com")?.revoked == true)
        #expect(s.loadCertificate(ca: "localhost-14000", name: "other.example.com") == nil)
    }

    @Test func corruptFilesAreTreatedAsAbsent() throws {
        let s = ACMEStorage(root: temporaryDirectory() + "/berth")
        let p = s.certificatePaths(ca: "ca", name: "x.example")
        try ACMEStorage.makeDirectories(s.certificateDirectory(ca: "ca", name: "x.example"))
        try FileIO.writeAtomically(p.crt, Array("junk".utf8))
        try FileIO.writeAtomically(p.key, Array("junk".utf8))
        #expect(s.loadCertificate(ca: "ca", name: "x.example") == nil)
    }

    @Test func accountRoundTrip() throws {
        let s = ACMEStorage(root: temporaryDirectory() + "/berth")
        #expect(s.loadAccount(ca: "ca", email: "a@b.example") == nil)
        let key = try ACMEKey.generate()
        try s.saveAccount(ca: "ca", email: "a@b.example", key: key, url: "https://ca/acct/9")
        let a = try #require(s.loadAccount(ca: "ca", email: "a@b.example"))
        #expect(a.key.thumbprint == key.thumbprint && a.url == "https://ca/acct/9")
        #expect(s.accountDirectory(ca: "ca", email: nil).hasSuffix("/acme/ca/users/default"))
        var st = stat()
        stat(s.accountDirectory(ca: "ca", email: "a@b.example") + "/account.key", &st)
        #expect(st.st_mode & 0o777 == 0o600)
    }

    /// Two holders of the same lock never overlap (flock on separate open file descriptions
    /// excludes even within one process, as it does between two Berth instances).
    @Test func lockSerializesHolders() throws {
        let s = ACMEStorage(root: temporaryDirectory() + "/berth")
        let events = SleepLog()
        let group = DispatchGroup()
        for i in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                try? s.withLock("ca-example.com") { () throws(ACMEError) in
                    events.add(i * 10)
                    usleep(50_000)
                    events.add(i * 10 + 1)
                }
                group.leave()
            }
        }
        group.wait()
        let e = events.ms
        #expect(e.count == 8)
        for k in stride(from: 0, to: e.count, by: 2) { #expect(e[k] + 1 == e[k + 1]) }
    }
}

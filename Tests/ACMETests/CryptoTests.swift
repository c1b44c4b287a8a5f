import JSON
import COpenSSL
import Foundation
import Testing

@testable import ACME

/// Independent verification through OpenSSL (not the module's code paths).
enum Verify {
    /// Verifies an ES256 `r || s` signature over `message` with `key`'s public half.
    static func es256(_ signature: [UInt8], _ message: [UInt8], _ key: ACMEKey) -> Bool {
        guard signature.count == 64, let sig = ECDSA_SIG_new() else { return false }
        defer { ECDSA_SIG_free(sig) }
        let r = BN_bin2bn(signature, 32, nil)
        let s = signature.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + 32, 32, nil) }
        guard ECDSA_SIG_set0(sig, r, s) == 1 else { return false }
        var p: UnsafeMutablePointer<UInt8>?
        let n = i2d_ECDSA_SIG(sig, &p)
        guard n > 0, let p else { return false }
        defer { CRYPTO_free(p, nil, 0) }
        let md = EVP_MD_CTX_new()
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestVerifyInit(md, nil, EVP_sha256(), nil, key.raw) == 1 else { return false }
        return message.withUnsafeBufferPointer { m in EVP_DigestVerify(md, p, Int(n), m.baseAddress, m.count) } == 1
    }
}

extension Verify {
    /// True when `der` is a CSR whose signature verifies with `key`.
    static func csr(_ der: [UInt8], signedBy key: ACMEKey) -> Bool {
        guard let req = der.withUnsafeBufferPointer({ b -> OpaquePointer? in
            var p: UnsafePointer<UInt8>? = b.baseAddress
            return d2i_X509_REQ(nil, &p, b.count)
        }) else { return false }
        defer { X509_REQ_free(req) }
        return X509_REQ_verify(req, key.raw) == 1
    }
}

func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

@Suite("Keys, JWS, CSR (RFC 7515, 7518, 7638, 8555)")
struct CryptoTests {
    @Test func es256SignaturesVerifyAndAreRaw() throws {
        let key = try ACMEKey.generate()
        let msg = Array("eyJhbGciOiJFUzI1NiJ9.e30".utf8)
        for _ in 0..<20 {  // r or s with leading zero bytes must still be 32 bytes each
            let sig = try key.signES256(msg)
            #expect(sig.count == 64)
            #expect(Verify.es256(sig, msg, key))
            #expect(!Verify.es256(sig, msg + [0], key))
        }
    }

    @Test func jwkAndThumbprint() throws {
        let key = try ACMEKey.generate()
        let jwk = key.jwk
        #expect(jwk.objectValue?.map(\.0) == ["crv", "kty", "x", "y"])  // RFC 7638 §3.2 order
        let x = try #require(Base64URL.decode(jwk["x"]?.stringValue ?? ""))
        let y = try #require(Base64URL.decode(jwk["y"]?.stringValue ?? ""))
        #expect(x.count == 32 && y.count == 32)
        let canonical = "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\(Base64URL.encode(x))\",\"y\":\"\(Base64URL.encode(y))\"}"
        #expect(key.thumbprint == Base64URL.encode(Digest.sha256(Array(canonical.utf8))))
        #expect(JWS.keyAuthorization(token: "tok", accountKey: key) == "tok." + key.thumbprint)
    }

    @Test func keyPEMRoundTripAndRejectsOtherKeys() throws {
        let key = try ACMEKey.generate()
        let pem = key.pem()
        #expect(String(decoding: pem, as: UTF8.self).hasPrefix("-----BEGIN EC PRIVATE KEY-----"))
        let back = try ACMEKey(pem: pem)
        #expect(back.thumbprint == key.thumbprint)
        #expect(throws: ACMECryptoError.self) { try ACMEKey(pem: Array("not a key".utf8)) }
        let rsa = try #require(berth_rsa_gen(2048))
        defer { EVP_PKEY_free(rsa) }
        var p: UnsafeMutablePointer<CChar>?
        let bio = BIO_new(BIO_s_mem())
        defer { BIO_free(bio) }
        PEM_write_bio_PrivateKey(bio, rsa, nil, nil, 0, nil, nil)
        let n = berth_bio_get_mem_data(bio, &p)
        let rsaPEM = Array(UnsafeRawBufferPointer(start: p, count: n))
        #expect(throws: ACMECryptoError.self) { try ACMEKey(pem: rsaPEM) }
    }

    @Test func hmacSHA256RFC4231Case2() {
        let mac = Digest.hmacSHA256(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))
        #expect(hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(hex(Digest.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func flattenedJWSWithKidAndJwk() throws {
        let key = try ACMEKey.generate()
        let payload = JSONValue.object([("identifiers", .array([]))])
        let jws = try JWS.sign(payload: payload, url: "https://ca/new-order", nonce: "n1", key: key, signer: .kid("https://ca/acct/1"))
        let protected = try JSONValue.parse(try #require(Base64URL.decode(jws["protected"]?.stringValue ?? "")))
        #expect(protected == .object([("alg", .string("ES256")), ("kid", .string("https://ca/acct/1")),
                                      ("nonce", .string("n1")), ("url", .string("https://ca/new-order"))]))
        #expect(Base64URL.decode(jws["payload"]?.stringValue ?? "") == payload.bytes)
        let signingInput = Array("\(jws["protected"]!.stringValue!).\(jws["payload"]!.stringValue!)".utf8)
        #expect(Verify.es256(try #require(Base64URL.decode(jws["signature"]?.stringValue ?? "")), signingInput, key))

        // newAccount: the key itself; POST-as-GET: empty payload (RFC 8555 §6.3).
        let get = try JWS.sign(payload: nil, url: "https://ca/acct/1", nonce: "n2", key: key, signer: .jwk)
        let h = try JSONValue.parse(try #require(Base64URL.decode(get["protected"]?.stringValue ?? "")))
        #expect(h["jwk"] == key.jwk && h["kid"] == nil)
        #expect(get["payload"]?.stringValue == "")
    }

    @Test func externalAccountBinding() throws {
        let key = try ACMEKey.generate()
        let mac = Array("0123456789abcdef0123456789abcdef".utf8)
        let eab = JWS.externalAccountBinding(keyID: "kid-1", macKey: mac, accountKey: key, url: "https://ca/new-acct")
        let protected = try #require(eab["protected"]?.stringValue)
        let payload = try #require(eab["payload"]?.stringValue)
        #expect(try JSONValue.parse(try #require(Base64URL.decode(protected)))
                == .object([("alg", .string("HS256")), ("kid", .string("kid-1")), ("url", .string("https://ca/new-acct"))]))
        #expect(Base64URL.decode(payload) == key.jwk.bytes)
        #expect(eab["signature"]?.stringValue == Base64URL.encode(Digest.hmacSHA256(key: mac, Array("\(protected).\(payload)".utf8))))
    }

    @Test func csrHasTheNamesAndVerifies() throws {
        let key = try ACMEKey.generate()
        let der = try key.certificateSigningRequest(names: ["example.com", "www.example.com", "192.0.2.1"])
        let req = try #require(der.withUnsafeBufferPointer { b -> OpaquePointer? in
            var p: UnsafePointer<UInt8>? = b.baseAddress
            return d2i_X509_REQ(nil, &p, b.count)
        })
        defer { X509_REQ_free(req) }
        #expect(X509_REQ_verify(req, key.raw) == 1)
        let text: String = {
            let bio = BIO_new(BIO_s_mem())
            defer { BIO_free(bio) }
            X509_REQ_print(bio, req)
            var p: UnsafeMutablePointer<CChar>?
            let n = berth_bio_get_mem_data(bio, &p)
            return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
        }()
        #expect(text.contains("DNS:example.com, DNS:www.example.com, IP Address:192.0.2.1"))
        #expect(text.contains("CN = example.com") || text.contains("CN=example.com"))
        #expect(throws: ACMECryptoError.self) { try key.certificateSigningRequest(names: []) }
    }
}

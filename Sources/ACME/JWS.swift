import JSON
/// JSON Web Signature in the flattened JSON serialization (RFC 7515 §7.2.2), the only request
/// body ACME accepts (RFC 8555 §6.2): `{"protected", "payload", "signature"}`, content type
/// `application/jose+json`.
package enum JWS {
    /// Who signs: the account's URL once registered (`kid`), or the public key itself for
    /// `newAccount` and key-signed `revokeCert` (`jwk`) — RFC 8555 §6.2: exactly one of them.
    package enum Signer {
        case kid(String)
        case jwk
    }

    /// Signs `payload` for `url` with `nonce` (RFC 8555 §6.2, §6.5). A nil payload is the
    /// empty string: POST-as-GET (RFC 8555 §6.3).
    package static func sign(
        payload: JSONValue?, url: String, nonce: String, key: ACMEKey, signer: Signer
    ) throws(ACMECryptoError) -> JSONValue {
        var header: [(String, JSONValue)] = [("alg", .string("ES256"))]
        switch signer {
        case .kid(let account): header.append(("kid", .string(account)))
        case .jwk: header.append(("jwk", key.jwk))
        }
        header.append(("nonce", .string(nonce)))
        header.append(("url", .string(url)))
        let protected = Base64URL.encode(JSONValue.object(header).bytes)
        let body = payload.map { Base64URL.encode($0.bytes) } ?? ""
        let signature = try key.signES256(Array("\(protected).\(body)".utf8))
        return .object([
            ("protected", .string(protected)), ("payload", .string(body)),
            ("signature", .string(Base64URL.encode(signature))),
        ])
    }

    /// The External Account Binding of a `newAccount` request (RFC 8555 §7.3.4): a JWS over
    /// the account's public JWK, MACed (HS256) with the key the CA handed out, `kid` its key
    /// identifier, `url` the newAccount URL, no nonce.
    package static func externalAccountBinding(keyID: String, macKey: [UInt8], accountKey: ACMEKey, url: String) -> JSONValue {
        let header = JSONValue.object([("alg", .string("HS256")), ("kid", .string(keyID)), ("url", .string(url))])
        let protected = Base64URL.encode(header.bytes)
        let payload = Base64URL.encode(accountKey.jwk.bytes)
        let mac = Digest.hmacSHA256(key: macKey, Array("\(protected).\(payload)".utf8))
        return .object([
            ("protected", .string(protected)), ("payload", .string(payload)),
            ("signature", .string(Base64URL.encode(mac))),
        ])
    }

    /// The key authorization for a challenge token (RFC 8555 §8.1): `token || '.' ||
    /// base64url(Thumbprint(accountKey))`.
    package static func keyAuthorization(token: String, accountKey: ACMEKey) -> String {
        token + "." + accountKey.thumbprint
    }
}

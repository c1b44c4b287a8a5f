internal import CNGTCP2
import IOCore

/// Packets answered without connection state: new connections (with or without address
/// validation), Version Negotiation, Stateless Reset, and refusals.
extension QUICEndpoint {
    /// The versions Berth speaks (RFC 9000 §15): QUIC v1 only.
    static let supportedVersions: [UInt32] = [0x1a2a_3a4a, NGTCP2_PROTO_VER_V1]

    /// The wall clock in nanoseconds, which tokens carry (they must survive a restart, so the
    /// monotonic clock will not do).
    static func wallNanos() -> UInt64 {
        let t = Clock.realtime()
        return UInt64(t.seconds) &* 1_000_000_000 &+ UInt64(t.nanos)
    }

    /// A long-header packet for no known connection: a client's first Initial (RFC 9000
    /// §7.2, §17.2.2). Validates a Retry token when there is one, requires one when the
    /// settings or the load say so (§8.1.2), then creates the connection.
    func accept(_ base: UnsafePointer<UInt8>, count: Int, path: inout ngtcp2_path, ecn: UInt32, now: UInt64) {
        var hd = ngtcp2_pkt_hd()
        let rv = ngtcp2_accept(&hd, base, count)
        if rv == NGTCP2_ERR_RETRY {
            sendRetry(&hd, path: &path, packetLength: count)
            return
        }
        guard rv == 0 else { return }
        if shuttingDown || connections.count >= configuration.limits.maxConnections {
            refusedConnections += 1
            sendClose(&hd, path: &path, code: UInt64(NGTCP2_CONNECTION_REFUSED))
            return
        }
        var originalDCID: ngtcp2_cid? = nil
        if hd.token.len > 0, let tok = hd.token.base, tok[0] == UInt8(NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
            var ocid = ngtcp2_cid()
            let ok = secret.withUnsafeBufferPointer { s in
                ngtcp2_crypto_verify_retry_token(
                    &ocid, tok, hd.token.len, s.baseAddress, s.count, hd.version, path.remote.addr,
                    path.remote.addrlen, &hd.dcid, configuration.timeouts.retryTokenLifetime.nanos,
                    QUICEndpoint.wallNanos())
            }
            if ok != 0 {
                // RFC 9000 §8.1.3: a server that cannot validate a Retry token closes with
                // INVALID_TOKEN.
                sendClose(&hd, path: &path, code: UInt64(NGTCP2_INVALID_TOKEN))
                return
            }
            originalDCID = ocid
        }
        let limits = configuration.limits
        if originalDCID == nil && (limits.requireRetry || handshaking >= limits.retryAboveHandshakes) {
            sendRetry(&hd, path: &path, packetLength: count)
            return
        }
        guard let acceptance = delegate?.quicEndpointAccept(self) else {
            refusedConnections += 1
            sendClose(&hd, path: &path, code: UInt64(NGTCP2_CONNECTION_REFUSED))
            return
        }
        let c: QUICConnection
        do {
            c = try QUICConnection(
                endpoint: self, header: &hd, originalDCID: originalDCID, path: &path, acceptance: acceptance, now: now)
        } catch {
            if configuration.debugLog { FileIO.writeAll(2, "quic: accepting a connection failed: \(error)\n") }
            return
        }
        acceptedConnections += 1
        connections[ObjectIdentifier(c)] = c
        c.registered = true
        c.countsAsHandshaking = true
        handshaking += 1
        c.route(QUICConnectionID(&hd.dcid))
        c.route(c.serverCID)
        c.read(base, count: count, path: &path, ecn: ecn, now: now)
    }

    /// Retry (RFC 9000 §8.1.2, §17.2.5): a token bound to the client's address and original
    /// DCID, under a fresh server CID. No state is kept.
    func sendRetry(_ hd: inout ngtcp2_pkt_hd, path: inout ngtcp2_path, packetLength: Int) {
        var scid = newConnectionID()
        let maxToken = berth_ngtcp2_max_retry_tokenlen()
        var token = [UInt8](repeating: 0, count: maxToken)
        let tl = secret.withUnsafeBufferPointer { s in
            ngtcp2_crypto_generate_retry_token(
                &token, s.baseAddress, s.count, hd.version, path.remote.addr, path.remote.addrlen, &scid, &hd.dcid,
                QUICEndpoint.wallNanos())
        }
        guard tl > 0 else { return }
        let out = txBuffer.assumingMemoryBound(to: UInt8.self)
        let n = ngtcp2_crypto_write_retry(
            out, min(1500, 3 * packetLength), hd.version, &hd.scid, &scid, &hd.dcid, token, Int(tl))
        guard n > 0 else { return }
        retriesSent += 1
        send(out, count: n, segmentSize: n, path: &path, ecn: 0)
    }

    /// A CONNECTION_CLOSE in an Initial packet without connection state (refused, or a bad
    /// Retry token).
    func sendClose(_ hd: inout ngtcp2_pkt_hd, path: inout ngtcp2_path, code: UInt64) {
        let out = txBuffer.assumingMemoryBound(to: UInt8.self)
        var scid = newConnectionID()
        let n = ngtcp2_crypto_write_connection_close(out, 1500, hd.version, &hd.scid, &scid, code, nil, 0)
        guard n > 0 else { return }
        send(out, count: n, segmentSize: n, path: &path, ecn: 0)
    }

    /// Version Negotiation (RFC 9000 §6, §17.2.1): our versions, with a reserved one first
    /// to exercise the client's version greasing (RFC 9000 §15).
    func sendVersionNegotiation(_ vc: ngtcp2_version_cid, path: inout ngtcp2_path, packetLength: Int) {
        guard let dcid = vc.dcid, let scid = vc.scid else { return }
        var r: UInt8 = 0
        QUICRandom.fill(&r, count: 1)
        let out = txBuffer.assumingMemoryBound(to: UInt8.self)
        let n = QUICEndpoint.supportedVersions.withUnsafeBufferPointer { sv in
            ngtcp2_pkt_write_version_negotiation(
                out, 1500, r, scid, vc.scidlen, dcid, vc.dcidlen, sv.baseAddress, sv.count)
        }
        guard n > 0 else { return }
        versionNegotiationsSent += 1
        send(out, count: n, segmentSize: n, path: &path, ecn: 0)
    }

    /// Stateless Reset (RFC 9000 §10.3): the token derived from the static secret and the
    /// unknown CID (so it matches what the connection that owned the CID advertised, even
    /// before a restart), padded with random bytes, always shorter than the packet that
    /// triggered it (§10.3.3: no reset loops) and at least 21 bytes (§10.3).
    func sendStatelessReset(dcid: UnsafePointer<UInt8>, dcidLength: Int, path: inout ngtcp2_path, packetLength: Int) {
        let tokenLength = Int(NGTCP2_STATELESS_RESET_TOKENLEN)
        let size = min(packetLength - 1, 43)
        let randLength = size - 1 - tokenLength
        guard dcidLength == QUICEndpoint.cidLength, randLength >= Int(NGTCP2_MIN_STATELESS_RESET_RANDLEN) else { return }
        var cid = ngtcp2_cid()
        cid.datalen = dcidLength
        withUnsafeMutableBytes(of: &cid.data) { $0.baseAddress!.copyMemory(from: dcid, byteCount: dcidLength) }
        var token = (UInt64(0), UInt64(0))
        var rand = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let n: Int = withUnsafeMutableBytes(of: &token) { t in
            withUnsafeMutableBytes(of: &rand) { r in
                let tp = t.baseAddress!.assumingMemoryBound(to: UInt8.self)
                let ok = secret.withUnsafeBufferPointer { s in
                    ngtcp2_crypto_generate_stateless_reset_token(tp, s.baseAddress, s.count, &cid)
                }
                guard ok == 0 else { return 0 }
                QUICRandom.fill(r.baseAddress!, count: randLength)
                return ngtcp2_pkt_write_stateless_reset(
                    txBuffer.assumingMemoryBound(to: UInt8.self), size, tp, r.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    randLength)
            }
        }
        guard n > 0 else { return }
        statelessResetsSent += 1
        send(txBuffer, count: n, segmentSize: n, path: &path, ecn: 0)
    }

    /// The stateless-reset token of `cid` (RFC 9000 §10.3.2), into `token` (16 bytes).
    func resetToken(for cid: UnsafePointer<ngtcp2_cid>, into token: UnsafeMutablePointer<UInt8>) -> Bool {
        secret.withUnsafeBufferPointer { s in
            ngtcp2_crypto_generate_stateless_reset_token(token, s.baseAddress, s.count, cid) == 0
        }
    }
}

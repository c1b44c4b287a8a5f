internal import COpenSSL
import IOCore

#if canImport(Glibc)
import Glibc
#endif

/// A BIO method that reads ciphertext straight out of a connection's `input` ByteBuffer and
/// appends ciphertext straight onto its `output` ByteBuffer: no intermediate memory BIO, so a
/// record costs one copy in each direction and no allocation once the buffers have grown.
///
/// The BIO's data pointer is the owning `TLSConnection`, unretained (the connection owns the
/// `SSL`, which owns the BIO). Reads on an empty buffer ask OpenSSL to retry
/// (`SSL_ERROR_WANT_READ`); writes always succeed, so `SSL_write` never wants to write.
enum ByteBufferBIO {
    /// The process-wide `BIO_METHOD`, created on first use.
    static let method = BIOMethodBox()

    /// A new BIO bound to `connection`.
    static func make(for connection: TLSConnection) -> OpaquePointer? {
        guard let bio = BIO_new(method.raw) else { return nil }
        BIO_set_data(bio, Unmanaged.passUnretained(connection).toOpaque())
        BIO_set_init(bio, 1)
        return bio
    }
}

/// Holder for the `BIO_METHOD *` (never freed: it lives as long as the process).
final class BIOMethodBox: @unchecked Sendable {
    let raw: OpaquePointer

    init() {
        guard let m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "berth-bytebuffer") else {
            fatalError("BIO_meth_new failed")
        }
        _ = BIO_meth_set_write(m, bioWrite)
        _ = BIO_meth_set_read(m, bioRead)
        _ = BIO_meth_set_ctrl(m, bioCtrl)
        _ = BIO_meth_set_create(m, bioCreate)
        _ = BIO_meth_set_destroy(m, bioDestroy)
        raw = m
    }
}

@inline(__always)
private func connection(of bio: OpaquePointer) -> TLSConnection? {
    guard let p = BIO_get_data(bio) else { return nil }
    return Unmanaged<TLSConnection>.fromOpaque(p).takeUnretainedValue()
}

private let bioWrite: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32 = { bio, data, len in
    guard let bio, let data, len >= 0, let conn = connection(of: bio) else { return -1 }
    berth_bio_clear_retry_flags(bio)
    conn.output.append(UnsafeRawBufferPointer(start: data, count: Int(len)))
    return len
}

private let bioRead: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, Int32) -> Int32 = { bio, out, len in
    guard let bio, let out, len > 0, let conn = connection(of: bio) else { return 0 }
    berth_bio_clear_retry_flags(bio)
    let input = conn.input
    let n = min(Int(len), input.readableBytes)
    if n == 0 {
        berth_bio_set_retry_read(bio)
        return -1
    }
    UnsafeMutableRawPointer(out).copyMemory(from: input.base + input.readerIndex, byteCount: n)
    input.consume(n)
    return Int32(n)
}

private let bioCtrl: @convention(c) (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int = { bio, cmd, _, _ in
    switch cmd {
    case BIO_CTRL_FLUSH, BIO_CTRL_DUP:
        return 1
    case BIO_CTRL_PENDING:
        guard let bio, let conn = connection(of: bio) else { return 0 }
        return conn.input.readableBytes
    default:
        // WPENDING (everything is already in `output`), EOF, PUSH/POP, kTLS queries, …
        return 0
    }
}

private let bioCreate: @convention(c) (OpaquePointer?) -> Int32 = { _ in 1 }

private let bioDestroy: @convention(c) (OpaquePointer?) -> Int32 = { bio in
    guard let bio else { return 0 }
    BIO_set_data(bio, nil)
    BIO_set_init(bio, 0)
    return 1
}

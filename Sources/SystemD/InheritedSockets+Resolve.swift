#if canImport(Glibc)
import Glibc
#endif
import IOCore

extension InheritedSockets {
    /// Resolves a bind address from the configuration.
    ///
    /// - Returns: nil when `address` is not an inherited-descriptor form (`fd/`, `fdgram/`,
    ///   `fdname/`, `fdgramname/`), so the caller binds it itself; otherwise the descriptors,
    ///   in fd order (exactly one for `fd/N`, `fdgram/N` and the indexed name forms).
    /// - Parameters:
    ///   - address: the address as written, e.g. `fd/3` or `fdname/https`.
    ///   - location: `file:line` of the address (`Caddyfile:6`), or empty.
    ///   - directive: the directive that holds it, for the message (`bind`, `default_bind`).
    /// - Throws: `BindError`, whose description is the whole start-up error message.
    package func resolve(_ address: String, location: String, directive: String = "bind") throws(BindError)
        -> [InheritedFD]?
    {
        let site = BindSite(location: location, directive: directive, address: address)
        guard let target = try BindTarget.parse(address, site: site) else { return nil }
        return try resolve(target, site: site)
    }

    /// Resolves a parsed target; see `resolve(_:location:directive:)`.
    ///
    /// In probing mode (no `LISTEN_FDS`), a descriptor that resolves gets `FD_CLOEXEC` and
    /// `O_NONBLOCK` here, since adoption did not touch it.
    package func resolve(_ target: BindTarget, site: BindSite) throws(BindError) -> [InheritedFD] {
        switch target {
        case .stream(let fd), .datagram(let fd):
            let d = try check(fd, target: target, site: site)
            prepareProbed(d)
            return [d]

        case .streamNamed(let name, let index), .datagramNamed(let name, let index):
            let sameName = hasNames ? descriptors.filter { $0.name == name } : []
            let matches = sameName.filter { target.isDatagram ? $0.isDatagram : $0.isStreamListener }
            if matches.isEmpty {
                throw .nameNotFound(site, name: name, sameName: sameName, wanted: target, inherited: self)
            }
            guard let index else { return matches }
            guard index < matches.count else {
                throw .indexOutOfRange(site, name: name, index: index, matches: matches, wanted: target)
            }
            return [matches[index]]
        }
    }

    /// Checks that `fd` is in the set and of the kind `target` needs.
    private func check(_ fd: Int32, target: BindTarget, site: BindSite) throws(BindError) -> InheritedFD {
        guard let d = descriptor(fd) else {
            throw .notInherited(site, fd: fd, inherited: self)
        }
        switch d.kind {
        case .notOpen:
            throw .notOpen(site, fd: fd, inherited: self)
        case .file:
            throw .notASocket(site, d, inherited: self)
        case .socket(let info):
            if target.isDatagram {
                guard info.type == .datagram else {
                    throw .wrongSocketType(site, d, wanted: target, inherited: self)
                }
            } else {
                guard info.type == .stream else {
                    throw .wrongSocketType(site, d, wanted: target, inherited: self)
                }
                guard info.isListening else {
                    throw .notListening(site, d, inherited: self)
                }
            }
            return d
        }
    }

    /// Probed descriptors were left as found at start-up; one that is going to be served on
    /// needs the same flags an adopted one gets. Errors are ignored: the fd was just checked
    /// to be an open socket, and the listener reports any later failure.
    private func prepareProbed(_ d: InheritedFD) {
        guard case .probed = source else { return }
        try? FDFlags.setCloseOnExec(d.fd)
        try? FDFlags.setNonBlocking(d.fd)
    }
}

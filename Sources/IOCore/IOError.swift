#if canImport(Glibc)
import Glibc
#endif

/// An error from a system call: the operation that failed and its `errno`.
package struct IOError: Error, CustomStringConvertible, Equatable {
    /// The failing operation, e.g. `"accept4"`.
    package var operation: String
    /// The `errno` value.
    package var errno: Int32

    package init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    package var description: String {
        "\(operation): \(IOError.describe(errno))"
    }

    /// `strerror` text for an errno value.
    package static func describe(_ code: Int32) -> String {
        guard let p = strerror(code) else { return "errno \(code)" }
        return String(cString: p)
    }
}

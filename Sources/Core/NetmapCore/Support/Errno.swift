#if canImport(Glibc)
import Glibc
#endif

/// An errno value as netmap reports it (Linux numbers). Core's errors are
/// always one of these, so a front end can hand them to the kernel as they are.
public struct NetmapError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public var errno: Int32

    public init(_ errno: Int32) { self.errno = errno }

    public static let EPERM = NetmapError(1)
    public static let ENOENT = NetmapError(2)
    public static let EIO = NetmapError(5)
    public static let ENXIO = NetmapError(6)
    public static let ENOMEM = NetmapError(12)
    public static let EFAULT = NetmapError(14)
    public static let EBUSY = NetmapError(16)
    public static let EEXIST = NetmapError(17)
    public static let ENODEV = NetmapError(19)
    public static let EINVAL = NetmapError(22)
    public static let EMSGSIZE = NetmapError(90)
    public static let EOPNOTSUPP = NetmapError(95)

    public var description: String {
        let name: String
        switch errno {
        case 1: name = "EPERM"
        case 2: name = "ENOENT"
        case 5: name = "EIO"
        case 6: name = "ENXIO"
        case 12: name = "ENOMEM"
        case 14: name = "EFAULT"
        case 16: name = "EBUSY"
        case 17: name = "EEXIST"
        case 19: name = "ENODEV"
        case 22: name = "EINVAL"
        case 90: name = "EMSGSIZE"
        case 95: name = "EOPNOTSUPP"
        default: name = "errno \(errno)"
        }
        return name
    }
}

/// Where Core reports what it does. The daemon plugs its logger in; tests
/// collect lines. Core never prints.
public struct CoreLog: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, notice, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public var sink: @Sendable (Level, String) -> Void

    public init(_ sink: @escaping @Sendable (Level, String) -> Void) { self.sink = sink }

    public static let silent = CoreLog { _, _ in }

    public func debug(_ s: @autoclosure () -> String) { sink(.debug, s()) }
    public func info(_ s: @autoclosure () -> String) { sink(.info, s()) }
    public func notice(_ s: @autoclosure () -> String) { sink(.notice, s()) }
    public func warning(_ s: @autoclosure () -> String) { sink(.warning, s()) }
    public func error(_ s: @autoclosure () -> String) { sink(.error, s()) }
}

// What the FUSE-file front end reads of /proc, as parsers of the bytes it
// read: no file access here, so they are tested without root or a mount
// (Tests/FUSEFrontEndTests). MappingHolds and Openers do the reading.

/// A file /proc/PID/maps may show for a mapping of the region: its device
/// numbers and inode.
package struct MapTarget: Equatable, Sendable {
    package var major: UInt32
    package var minor: UInt32
    package var inode: UInt64

    package init(major: UInt32, minor: UInt32, inode: UInt64) {
        self.major = major
        self.minor = minor
        self.inode = inode
    }
}

/// /proc/PID/maps.
package enum ProcMaps {
    /// Mappings of the region in a /proc/PID/maps text: lines naming a
    /// target, where a line that continues the previous one (adjacent
    /// addresses and file offsets: a mapping split by mprotect) is the same
    /// mapping. Line format: "start-end perms offset major:minor inode path".
    package static func countMappings(_ maps: [UInt8], of targets: [MapTarget]) -> Int {
        var count = 0
        var previous: (end: UInt64, offsetEnd: UInt64, target: Int)? = nil
        var i = 0
        let n = maps.count
        func hex(_ stop: UInt8) -> UInt64? {
            var v: UInt64 = 0
            var digits = 0
            while i < n, maps[i] != stop {
                let c = maps[i]
                let d: UInt64
                switch c {
                case 0x30 ... 0x39: d = UInt64(c - 0x30)
                case 0x61 ... 0x66: d = UInt64(c - 0x61 + 10)
                case 0x41 ... 0x46: d = UInt64(c - 0x41 + 10)
                default: return nil
                }
                v = v &<< 4 | d
                digits += 1
                i += 1
            }
            guard i < n, digits > 0 else { return nil }
            i += 1  // the separator
            return v
        }
        func decimal() -> UInt64? {
            var v: UInt64 = 0
            var digits = 0
            while i < n, maps[i] >= 0x30, maps[i] <= 0x39 {
                v = v &* 10 &+ UInt64(maps[i] - 0x30)
                digits += 1
                i += 1
            }
            return digits > 0 ? v : nil
        }
        while i < n {
            let lineStart = i
            var matched: (start: UInt64, end: UInt64, offset: UInt64, target: Int)? = nil
            if let start = hex(0x2d), let end = hex(0x20) {
                while i < n, maps[i] != 0x20, maps[i] != 0x0a { i += 1 }  // perms
                if i < n, maps[i] == 0x20 { i += 1 }
                if let offset = hex(0x20), let major = hex(0x3a), let minor = hex(0x20), let inode = decimal(),
                   let t = targets.firstIndex(of: MapTarget(major: UInt32(truncatingIfNeeded: major),
                                                         minor: UInt32(truncatingIfNeeded: minor), inode: inode)) {
                    matched = (start, end, offset, t)
                }
            }
            if let m = matched {
                let continues = previous.map { $0.end == m.start && $0.offsetEnd == m.offset && $0.target == m.target }
                    ?? false
                if !continues { count += 1 }
                previous = (m.end, m.offset &+ (m.end &- m.start), m.target)
            } else {
                previous = nil
            }
            // next line
            if i == lineStart { i += 1 }
            while i < n, maps[i] != 0x0a { i += 1 }
            i += 1
        }
        return count
    }
}

/// /proc/TID/status.
package enum ProcStatus {
    /// The "Tgid:" value of a /proc/TID/status text: the thread's process.
    package static func threadGroup(_ bytes: [UInt8]) -> Int32? {
        let key = Array("\nTgid:".utf8)
        guard bytes.count > key.count else { return nil }
        var i = 0
        while i + key.count <= bytes.count {
            if bytes[i] == key[0] && Array(bytes[i ..< i + key.count]) == key {
                var j = i + key.count
                while j < bytes.count && (bytes[j] == 0x20 || bytes[j] == 0x09) { j += 1 }
                var value: Int32 = 0
                var digits = 0
                while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39, digits < 10 {
                    value = value * 10 + Int32(bytes[j] - 0x30)
                    j += 1
                    digits += 1
                }
                return digits > 0 && value > 0 ? value : nil
            }
            i += 1
        }
        return nil
    }
}

/// /proc/TID/stat.
package enum ProcStat {
    /// The state letter of a /proc/TID/stat text ("tid (comm) S ..."): it
    /// follows the last ')', since the command name may hold any byte.
    package static func state(_ bytes: [UInt8]) -> UInt8? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count,
              bytes[close + 1] == UInt8(ascii: " ") else { return nil }
        return bytes[close + 2]
    }
}

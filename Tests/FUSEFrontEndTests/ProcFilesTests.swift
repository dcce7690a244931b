// The /proc parsers of the FUSE-file front end (ProcFiles.swift), on texts
// written here: no root, no mount, no other process.

import Testing

@testable import FUSEFrontEnd

private func bytes(_ lines: [String]) -> [UInt8] { Array(lines.joined(separator: "\n").utf8) + [0x0a] }

@Suite struct ProcMapsTests {
    let region = MapTarget(major: 0, minor: 0x1a, inode: 12345)
    let fuseFile = MapTarget(major: 0, minor: 0x37, inode: 1)

    @Test func countsEachMappingOfATarget() {
        let maps = bytes([
            "55d0c0a00000-55d0c0a21000 r--p 00000000 fe:00 393227   /usr/bin/prog",
            "7f0000000000-7f0000400000 rw-s 00000000 00:1a 12345    /run/netmapd/region-1",
            "7f0000400000-7f0000800000 rw-s 00000000 00:1a 12345    /run/netmapd/region-1",
            "7f1000000000-7f1000400000 rw-s 00000000 00:37 1        /dev/netmap",
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0        [stack]",
        ])
        // Two separate mappings of the region file (each from offset 0), one
        // of the FUSE file; the program and the stack are not targets.
        #expect(ProcMaps.countMappings(maps, of: [region, fuseFile]) == 3)
        #expect(ProcMaps.countMappings(maps, of: [fuseFile]) == 1)
        #expect(ProcMaps.countMappings(maps, of: []) == 0)
    }

    @Test func aMappingSplitByMprotectIsOneMapping() {
        // Adjacent addresses, offsets continuing: one mmap, two lines.
        let maps = bytes([
            "7f0000000000-7f0000001000 r--s 00000000 00:1a 12345 /run/netmapd/region-1",
            "7f0000001000-7f0000400000 rw-s 00001000 00:1a 12345 /run/netmapd/region-1",
        ])
        #expect(ProcMaps.countMappings(maps, of: [region]) == 1)
        // Adjacent addresses but the offset starts again: two mmaps.
        let two = bytes([
            "7f0000000000-7f0000001000 rw-s 00000000 00:1a 12345 /run/netmapd/region-1",
            "7f0000001000-7f0000002000 rw-s 00000000 00:1a 12345 /run/netmapd/region-1",
        ])
        #expect(ProcMaps.countMappings(two, of: [region]) == 2)
    }

    @Test func hexDeviceNumbersAndLongInodesMatch() {
        let big = MapTarget(major: 0x103, minor: 0xab, inode: 9_876_543_210)
        let maps = bytes(["7f0000000000-7f0000400000 rw-s 00000000 103:ab 9876543210 /x"])
        #expect(ProcMaps.countMappings(maps, of: [big]) == 1)
        #expect(ProcMaps.countMappings(maps, of: [MapTarget(major: 0x103, minor: 0xab, inode: 987_654_321)]) == 0)
    }

    @Test func malformedAndTruncatedTextCountsNothingAndDoesNotTrap() {
        let target = region
        for text in ["", "\n\n", "garbage", "7f00-", "7f0000000000-7f0000400000 rw-s 00000000 00:1a",
                     "zz-yy rw-s 0 00:1a 12345 /x", "7f0000000000-7f0000400000 rw-s 00000000 00:1a 12345x"] {
            #expect(ProcMaps.countMappings(Array(text.utf8), of: [target]) <= 1, "\(text)")
        }
        #expect(ProcMaps.countMappings(Array("7f0000000000-7f0000400000 rw-s 00000000 00:1a".utf8), of: [target]) == 0)
    }
}

@Suite struct ProcStatusTests {
    @Test func statStateFollowsTheLastParenthesis() {
        #expect(ProcStat.state(Array("4242 (netmapd) S 1 4242".utf8)) == UInt8(ascii: "S"))
        #expect(ProcStat.state(Array("4243 (a) b) R 1 4242".utf8)) == UInt8(ascii: "R"))
        #expect(ProcStat.state(Array("4244 (cut".utf8)) == nil)
        #expect(ProcStat.state([]) == nil)
    }

    @Test func threadGroupIsTheTgidLine() {
        let status = bytes(["Name:\tprog", "Umask:\t0022", "State:\tS (sleeping)", "Tgid:\t4242", "Ngid:\t0",
                            "Pid:\t4250", "PPid:\t1"])
        #expect(ProcStatus.threadGroup(status) == 4242)
    }

    @Test func noTgidLineOrNoNumberIsNil() {
        #expect(ProcStatus.threadGroup(bytes(["Name:\tprog", "Pid:\t4250"])) == nil)
        #expect(ProcStatus.threadGroup(bytes(["Name:\tprog", "Tgid:\t"])) == nil)
        #expect(ProcStatus.threadGroup([]) == nil)
    }
}

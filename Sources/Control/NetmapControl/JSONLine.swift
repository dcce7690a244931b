// A small Encodable -> JSON encoder, so that the daemon answers the control
// socket without linking Foundation. Output is one line (no newlines inside),
// keys in the order the type encodes them, integers exact (UInt64 counters
// are written as digits, never through Double), nil optionals left out.

public enum JSONLine {
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        let root = JSONNode()
        try value.encode(to: JSONTreeEncoder(node: root, codingPath: []))
        var out = ""
        root.write(to: &out)
        return out
    }

    /// `s` as a JSON string literal.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7f || u.value == 0x2028 || u.value == 0x2029 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// One value of the tree being built. Containers are filled in place, so a
/// nested container handed out earlier can still be written to.
final class JSONNode {
    enum Kind {
        case unset
        case scalar(String)          // already JSON text
        case object([(String, JSONNode)])
        case array([JSONNode])
    }
    var kind: Kind = .unset

    func write(to out: inout String) {
        switch kind {
        case .unset: out += "null"
        case .scalar(let s): out += s
        case .object(let members):
            out += "{"
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { out += "," }
                out += JSONLine.quote(k)
                out += ":"
                v.write(to: &out)
            }
            out += "}"
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(to: &out)
            }
            out += "]"
        }
    }

    /// The member `key` of an object node (created, or replaced if present).
    func member(_ key: String) -> JSONNode {
        let child = JSONNode()
        if case .object(var members) = kind {
            if let i = members.firstIndex(where: { $0.0 == key }) {
                members[i].1 = child
            } else {
                members.append((key, child))
            }
            kind = .object(members)
        } else {
            kind = .object([(key, child)])
        }
        return child
    }

    func appendElement() -> JSONNode {
        let child = JSONNode()
        if case .array(var items) = kind {
            items.append(child)
            kind = .array(items)
        } else {
            kind = .array([child])
        }
        return child
    }

    func becomeObject() { if case .object = kind {} else { kind = .object([]) } }
    func becomeArray() { if case .array = kind {} else { kind = .array([]) } }
    var count: Int {
        if case .array(let a) = kind { return a.count }
        if case .object(let o) = kind { return o.count }
        return 0
    }
}

struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        stringValue = String(intValue)
        self.intValue = intValue
    }
}

struct JSONTreeEncoder: Encoder {
    let node: JSONNode
    var codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.becomeObject()
        return KeyedEncodingContainer(JSONKeyed<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        node.becomeArray()
        return JSONUnkeyed(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer {
        JSONSingle(node: node, codingPath: codingPath)
    }
}

/// JSON text for the scalars every container accepts.
enum JSONScalar {
    static func text<T: Encodable>(_ value: T) -> String? {
        switch value {
        case let v as String: return JSONLine.quote(v)
        case let v as Bool: return v ? "true" : "false"
        case let v as Int: return String(v)
        case let v as Int8: return String(v)
        case let v as Int16: return String(v)
        case let v as Int32: return String(v)
        case let v as Int64: return String(v)
        case let v as UInt: return String(v)
        case let v as UInt8: return String(v)
        case let v as UInt16: return String(v)
        case let v as UInt32: return String(v)
        case let v as UInt64: return String(v)
        case let v as Double: return v.isFinite ? "\(v)" : "null"
        case let v as Float: return v.isFinite ? "\(v)" : "null"
        default: return nil
        }
    }

    static func encode<T: Encodable>(_ value: T, into node: JSONNode, codingPath: [CodingKey]) throws {
        if let t = text(value) {
            node.kind = .scalar(t)
        } else {
            try value.encode(to: JSONTreeEncoder(node: node, codingPath: codingPath))
        }
    }
}

struct JSONKeyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: JSONNode
    var codingPath: [CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.member(key.stringValue).kind = .scalar("null") }
    mutating func encode(_ value: Bool, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: String, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try put(value, key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try put(value, key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try put(value, key) }

    private func put<T: Encodable>(_ value: T, _ key: Key) throws {
        try JSONScalar.encode(value, into: node.member(key.stringValue), codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type,
                                                        forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = node.member(key.stringValue)
        child.becomeObject()
        return KeyedEncodingContainer(JSONKeyed<NestedKey>(node: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        let child = node.member(key.stringValue)
        child.becomeArray()
        return JSONUnkeyed(node: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> Encoder {
        JSONTreeEncoder(node: node.member("super"), codingPath: codingPath)
    }

    mutating func superEncoder(forKey key: Key) -> Encoder {
        JSONTreeEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key])
    }
}

struct JSONUnkeyed: UnkeyedEncodingContainer {
    let node: JSONNode
    var codingPath: [CodingKey]
    var count: Int { node.count }

    mutating func encodeNil() throws { node.appendElement().kind = .scalar("null") }
    mutating func encode(_ value: Bool) throws { try add(value) }
    mutating func encode(_ value: String) throws { try add(value) }
    mutating func encode(_ value: Double) throws { try add(value) }
    mutating func encode(_ value: Float) throws { try add(value) }
    mutating func encode(_ value: Int) throws { try add(value) }
    mutating func encode(_ value: Int8) throws { try add(value) }
    mutating func encode(_ value: Int16) throws { try add(value) }
    mutating func encode(_ value: Int32) throws { try add(value) }
    mutating func encode(_ value: Int64) throws { try add(value) }
    mutating func encode(_ value: UInt) throws { try add(value) }
    mutating func encode(_ value: UInt8) throws { try add(value) }
    mutating func encode(_ value: UInt16) throws { try add(value) }
    mutating func encode(_ value: UInt32) throws { try add(value) }
    mutating func encode(_ value: UInt64) throws { try add(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { try add(value) }

    private func add<T: Encodable>(_ value: T) throws {
        let key = JSONKey(intValue: node.count)
        try JSONScalar.encode(value, into: node.appendElement(), codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let key = JSONKey(intValue: node.count)
        let child = node.appendElement()
        child.becomeObject()
        return KeyedEncodingContainer(JSONKeyed<NestedKey>(node: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        let key = JSONKey(intValue: node.count)
        let child = node.appendElement()
        child.becomeArray()
        return JSONUnkeyed(node: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> Encoder {
        JSONTreeEncoder(node: node.appendElement(), codingPath: codingPath)
    }
}

struct JSONSingle: SingleValueEncodingContainer {
    let node: JSONNode
    var codingPath: [CodingKey]

    mutating func encodeNil() throws { node.kind = .scalar("null") }
    mutating func encode(_ value: Bool) throws { try set(value) }
    mutating func encode(_ value: String) throws { try set(value) }
    mutating func encode(_ value: Double) throws { try set(value) }
    mutating func encode(_ value: Float) throws { try set(value) }
    mutating func encode(_ value: Int) throws { try set(value) }
    mutating func encode(_ value: Int8) throws { try set(value) }
    mutating func encode(_ value: Int16) throws { try set(value) }
    mutating func encode(_ value: Int32) throws { try set(value) }
    mutating func encode(_ value: Int64) throws { try set(value) }
    mutating func encode(_ value: UInt) throws { try set(value) }
    mutating func encode(_ value: UInt8) throws { try set(value) }
    mutating func encode(_ value: UInt16) throws { try set(value) }
    mutating func encode(_ value: UInt32) throws { try set(value) }
    mutating func encode(_ value: UInt64) throws { try set(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { try set(value) }

    private func set<T: Encodable>(_ value: T) throws {
        try JSONScalar.encode(value, into: node, codingPath: codingPath)
    }
}

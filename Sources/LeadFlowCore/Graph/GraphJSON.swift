import Foundation

/// Every body that comes from Graph is decoded here. Foundation's JSONDecoder traps,
/// rather than throws, on some inputs nested deeper than 512 levels (the fuzzer found a
/// 513-byte page of `[` that crashed the process: `fixtures/fuzz/graph-deep-nesting.json`),
/// so the nesting is measured first and anything deeper than Graph ever sends is refused
/// as malformed.
public enum GraphJSON {
    /// Graph's deepest documents (a lead's field_data values) are 5 levels deep.
    public static let maximumDepth = 64

    public struct TooDeep: Error, Equatable {
        public let depth: Int
    }

    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let depth = nesting(of: data)
        guard depth <= maximumDepth else { throw TooDeep(depth: depth) }
        return try JSONDecoder().decode(type, from: data)
    }

    /// The deepest nesting of arrays and objects, outside strings; stops counting once past
    /// the limit.
    public static func nesting(of data: Data) -> Int {
        data.withUnsafeBytes { bytes -> Int in
            var depth = 0, deepest = 0
            var inString = false, escaped = false
            for byte in bytes {
                if inString {
                    if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    depth += 1
                    deepest = max(deepest, depth)
                    if deepest > maximumDepth { return deepest }
                case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
                default: break
                }
            }
            return deepest
        }
    }
}

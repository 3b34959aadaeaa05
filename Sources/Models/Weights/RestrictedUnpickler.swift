/// A pickle reader that builds values and never runs code: it knows the opcodes a PyTorch state dict
/// uses and a short list of globals (ordered dicts, tensor rebuild functions, storage types), and refuses
/// every other global by name before anything could be called.
struct RestrictedUnpickler {
    /// Globals a state dict may name; everything else (`os.system`, `builtins.eval`, ...) is refused.
    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage",
        "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage",
        "torch.BoolStorage",
    ]

    /// A storage named by a persistent id: where its bytes are and how to read them.
    struct StorageRef {
        var key: String
        var type: String
        var count: Int?
    }

    /// A tensor rebuilt from a storage.
    struct TensorRef {
        var storage: StorageRef
        var offset: Int
        var shape: [Int]
        var stride: [Int]
    }

    final class ListBox { var items: [Value] = [] }
    final class DictBox { var pairs: [(Value, Value)] = [] }

    indirect enum Value {
        case none, bool(Bool), int(Int), bigInt(Int128), float(Double), string(String), bytes([UInt8])
        case tuple([Value]), list(ListBox), dict(DictBox)
        case global(String), storage(StorageRef), tensor(TensorRef)
        case mark
    }

    struct Failure: Error { var message: String }

    private let bytes: [UInt8]
    private(set) var position: Int
    private var stack: [Value] = []
    private var marks: [Int] = []
    private var memo: [Int: Value] = [:]
    static let maximumDepth = 100_000

    init(bytes: [UInt8], at position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    private mutating func read(_ n: Int) throws(Failure) -> ArraySlice<UInt8> {
        guard n >= 0, position + n <= bytes.count else { throw Failure(message: "pickle ends early at byte \(position)") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }

    private mutating func byte() throws(Failure) -> UInt8 { try read(1).first! }

    private mutating func littleEndian(_ n: Int) throws(Failure) -> UInt64 {
        try read(n).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    private mutating func line() throws(Failure) -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A), end - position < 1024 else {
            throw Failure(message: "unterminated text at byte \(position)")
        }
        let text = String(decoding: bytes[position..<end], as: UTF8.self)
        position = end + 1
        return text
    }

    private mutating func pop() throws(Failure) -> Value {
        guard let value = stack.popLast() else { throw Failure(message: "stack underflow at byte \(position)") }
        if case .mark = value { throw Failure(message: "unexpected mark at byte \(position)") }
        return value
    }

    private mutating func push(_ value: Value) throws(Failure) {
        guard stack.count < Self.maximumDepth else { throw Failure(message: "pickle stack too deep") }
        stack.append(value)
    }

    /// Values since the last MARK, which is removed.
    private mutating func popToMark() throws(Failure) -> [Value] {
        guard let mark = marks.popLast(), mark < stack.count, case .mark = stack[mark] else {
            throw Failure(message: "no mark at byte \(position)")
        }
        let items = Array(stack[(mark + 1)...])
        stack.removeSubrange(mark...)
        return items
    }

    private func text(_ slice: ArraySlice<UInt8>) throws(Failure) -> String {
        guard let s = String(validating: slice, as: UTF8.self) else { throw Failure(message: "invalid UTF-8 text at byte \(position)") }
        return s
    }

    private func checkGlobal(_ name: String) throws(Failure) -> Value {
        guard Self.allowedGlobals.contains(name) else {
            throw Failure(message: "refused global '\(name)': a weight file may only name tensor and storage types")
        }
        return .global(name)
    }

    /// Reads one pickle up to its STOP and returns its value.
    mutating func load() throws(Failure) -> Value {
        stack.removeAll()
        marks.removeAll()
        memo.removeAll()
        while true {
            let opcode = try byte()
            switch opcode {
            case 0x80: _ = try byte()                                  // PROTO
            case 0x95: _ = try read(8)                                 // FRAME
            case 0x2E: return try pop()                                // STOP
            case 0x28: marks.append(stack.count); stack.append(.mark)  // MARK
            case 0x4E: try push(.none)
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: try littleEndian(4)))))  // BININT
            case 0x4B: try push(.int(Int(try byte())))                                     // BININT1
            case 0x4D: try push(.int(Int(try littleEndian(2))))                             // BININT2
            case 0x8A, 0x8B:                                                                // LONG1, LONG4
                let n = Int(opcode == 0x8A ? try littleEndian(1) : try littleEndian(4))
                guard n <= 16 else { throw Failure(message: "integer of \(n) bytes is too large") }
                let digits = try read(n)
                var value: Int128 = 0
                for (i, b) in digits.enumerated() { value |= Int128(b) << (8 * i) }
                if n > 0, digits.last! & 0x80 != 0 { value -= Int128(1) << (8 * n) }
                if let small = Int(exactly: value) { try push(.int(small)) } else { try push(.bigInt(value)) }
            case 0x47: try push(.float(Double(bitPattern: UInt64(bigEndian: try read(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))))
            case 0x58: try push(.string(try text(try read(Int(try littleEndian(4))))))  // BINUNICODE
            case 0x8C: try push(.string(try text(try read(Int(try byte())))))          // SHORT_BINUNICODE
            case 0x55: try push(.string(String(decoding: try read(Int(try byte())), as: UTF8.self)))  // SHORT_BINSTRING
            case 0x54: try push(.string(String(decoding: try read(Int(try littleEndian(4))), as: UTF8.self)))  // BINSTRING
            case 0x43: try push(.bytes(Array(try read(Int(try byte())))))              // SHORT_BINBYTES
            case 0x42: try push(.bytes(Array(try read(Int(try littleEndian(4))))))     // BINBYTES
            case 0x29: try push(.tuple([]))
            case 0x74: try push(.tuple(try popToMark()))
            case 0x85: try push(.tuple([try pop()]))
            case 0x86: let b = try pop(); let a = try pop(); try push(.tuple([a, b]))
            case 0x87: let c = try pop(); let b = try pop(); let a = try pop(); try push(.tuple([a, b, c]))
            case 0x5D: try push(.list(ListBox()))
            case 0x7D: try push(.dict(DictBox()))
            case 0x61:                                                 // APPEND
                let item = try pop()
                guard case .list(let list) = try pop() else { throw Failure(message: "APPEND to a non-list") }
                list.items.append(item)
                try push(.list(list))
            case 0x65:                                                 // APPENDS
                let items = try popToMark()
                guard case .list(let list) = try pop() else { throw Failure(message: "APPENDS to a non-list") }
                list.items += items
                try push(.list(list))
            case 0x73:                                                 // SETITEM
                let value = try pop(); let key = try pop()
                guard case .dict(let dict) = try pop() else { throw Failure(message: "SETITEM on a non-dict") }
                dict.pairs.append((key, value))
                try push(.dict(dict))
            case 0x75:                                                 // SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0, case .dict(let dict) = try pop() else { throw Failure(message: "bad SETITEMS") }
                for i in stride(from: 0, to: items.count, by: 2) { dict.pairs.append((items[i], items[i + 1])) }
                try push(.dict(dict))
            case 0x71: memo[Int(try byte())] = try peek()              // BINPUT
            case 0x72: memo[Int(try littleEndian(4))] = try peek()     // LONG_BINPUT
            case 0x94: memo[memo.count] = try peek()                   // MEMOIZE
            case 0x68, 0x6A:                                           // BINGET, LONG_BINGET
                let index = Int(opcode == 0x68 ? UInt64(try byte()) : try littleEndian(4))
                guard let value = memo[index] else { throw Failure(message: "memo entry \(index) missing") }
                try push(value)
            case 0x30: _ = try pop()                                   // POP
            case 0x32: try push(try peek())                            // DUP
            case 0x63:                                                 // GLOBAL
                let module = try line(), name = try line()
                try push(try checkGlobal("\(module).\(name)"))
            case 0x93:                                                 // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw Failure(message: "STACK_GLOBAL needs two strings")
                }
                try push(try checkGlobal("\(module).\(name)"))
            case 0x51:                                                 // BINPERSID
                try push(try persistent(try pop()))
            case 0x52:                                                 // REDUCE
                let arguments = try pop()
                let callable = try pop()
                try push(try reduce(callable, arguments))
            case 0x62:                                                 // BUILD
                _ = try pop()  // instance state: ordered dicts carry `_metadata` here, which we do not need
                let target = try pop()
                guard case .dict = target else { throw Failure(message: "BUILD on something other than a dict") }
                try push(target)
            default:
                throw Failure(message: "unsupported pickle opcode 0x\(String(opcode, radix: 16)) at byte \(position - 1)")
            }
        }
    }

    private func peek() throws(Failure) -> Value {
        guard let top = stack.last else { throw Failure(message: "memo store on an empty stack") }
        return top
    }

    /// PyTorch names storages by a persistent id `('storage', type, key, location, count[, view])`.
    private func persistent(_ id: Value) throws(Failure) -> Value {
        guard case .tuple(let parts) = id, parts.count >= 5,
              case .string("storage") = parts[0], case .global(let type) = parts[1], type.hasSuffix("Storage"),
              case .string(let key) = parts[2] else {
            throw Failure(message: "unrecognised persistent id")
        }
        var count: Int?
        if case .int(let n) = parts[4] { count = n }
        return .storage(StorageRef(key: key, type: type, count: count))
    }

    private func ints(_ value: Value) throws(Failure) -> [Int] {
        guard case .tuple(let items) = value else { throw Failure(message: "expected a tuple of sizes") }
        var result: [Int] = []
        for item in items {
            guard case .int(let n) = item, n >= 0 else { throw Failure(message: "bad size or stride") }
            result.append(n)
        }
        return result
    }

    /// Calls one of the allowed globals: builds a value, runs nothing.
    private func reduce(_ callable: Value, _ arguments: Value) throws(Failure) -> Value {
        guard case .global(let name) = callable, case .tuple(let args) = arguments else {
            throw Failure(message: "REDUCE on something that is not an allowed global")
        }
        switch name {
        case "collections.OrderedDict":
            return .dict(DictBox())
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            guard args.count >= 4, case .storage(let storage) = args[0], case .int(let offset) = args[1], offset >= 0 else {
                throw Failure(message: "malformed tensor record")
            }
            let shape = try ints(args[2]), stride = try ints(args[3])
            guard shape.count == stride.count else { throw Failure(message: "tensor shape and stride differ in rank") }
            return .tensor(TensorRef(storage: storage, offset: offset, shape: shape, stride: stride))
        case "torch._utils._rebuild_parameter":
            guard let first = args.first, case .tensor = first else { throw Failure(message: "malformed parameter record") }
            return first
        default:
            throw Failure(message: "refused to call '\(name)'")
        }
    }
}

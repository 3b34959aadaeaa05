import Synchronization

/// A Float32 tensor in channel-major (C, H, W) layout, batch 1, owning its memory.
///
/// A class so that large activations move between pipeline stages without copies; whoever holds it
/// last may write to it. Not synchronised: hand it on, do not share it.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    /// The memory; raw pointers stay inside this module (others use `buffer` and `channelBuffer`).
    let data: UnsafeMutablePointer<Float>
    /// The tensor whose memory a view borrows; nil when this one owns its memory.
    private let base: Tensor?
    /// Memory lent by the caller of `borrowing` (never given back to the pool).
    private let lent: Bool

    /// A zero-filled tensor.
    public convenience init(shape: [Int]) {
        self.init(uninitialized: shape)
        data.update(repeating: 0, count: count)
    }

    /// A tensor whose values are whatever its memory held: for outputs that are written in full.
    public init(uninitialized shape: [Int]) {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 > 0 }, "bad tensor shape \(shape)")
        self.shape = shape
        count = shape.reduce(1, *)
        data = TensorMemory.take(count)
        base = nil
        lent = false
    }

    /// A view of channels `channels` of a (C, H, W) tensor: writes go to `base`'s memory.
    public init(channelsOf base: Tensor, _ channels: Range<Int>) {
        precondition(channels.lowerBound >= 0 && channels.upperBound <= base.channels && !channels.isEmpty)
        shape = [channels.count, base.height, base.width]
        count = channels.count * base.plane
        data = base.channel(channels.lowerBound)
        self.base = base.base ?? base
        lent = false
    }

    /// `base`'s memory seen with another shape of at most as many values: writes go to `base`'s memory.
    public init(viewing base: Tensor, shape: [Int]) {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 > 0 }, "bad tensor shape \(shape)")
        self.shape = shape
        count = shape.reduce(1, *)
        precondition(count <= base.count, "a view of \(shape) over \(base.count) values")
        data = base.data
        self.base = base.base ?? base
        lent = false
    }

    private init(lending memory: UnsafeMutablePointer<Float>, shape: [Int]) {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 > 0 }, "bad tensor shape \(shape)")
        self.shape = shape
        count = shape.reduce(1, *)
        data = memory
        base = nil
        lent = true
    }

    /// `memory` (at least `shape`'s count of values) seen as a tensor while `body` runs, without a copy: for
    /// callers whose values live in their own arrays (the ONNX runner). `body` must not keep the tensor, and
    /// must not write to it when the memory is only readable.
    public static func borrowing<R>(_ memory: UnsafeMutableBufferPointer<Float>, shape: [Int], _ body: (Tensor) throws -> R) rethrows -> R {
        let tensor = Tensor(lending: memory.baseAddress!, shape: shape)
        precondition(tensor.count <= memory.count, "a tensor of \(shape) over \(memory.count) values")
        return try withExtendedLifetime(tensor) { try body(tensor) }
    }

    /// A tensor holding `values`, which must match `shape`.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(uninitialized: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { if base == nil && !lent { TensorMemory.give(data, count) } }

    /// Channels, height and width of a 3-D (C, H, W) tensor.
    public var channels: Int { shape[0] }
    public var height: Int { shape.count > 1 ? shape[1] : 1 }
    public var width: Int { shape.count > 2 ? shape[2] : 1 }
    /// Elements in one channel plane.
    public var plane: Int { height * width }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var array: [Float] { Array(buffer) }

    /// The start of channel `c`.
    @inline(__always) func channel(_ c: Int) -> UnsafeMutablePointer<Float> { data + c * plane }

    /// Channel `c`'s plane, bounded.
    public func channelBuffer(_ c: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(c >= 0 && c < channels, "channel \(c) of \(channels)")
        return UnsafeMutableBufferPointer(start: data + c * plane, count: plane)
    }

    /// Copies `other`'s values, which must be as many.
    public func copyValues(from other: Tensor) {
        precondition(other.count == count, "copying \(other.count) values into \(count)")
        data.update(from: other.data, count: count)
    }

    /// An independent copy.
    public func copy() -> Tensor {
        let result = Tensor(shape: shape)
        result.data.update(from: data, count: count)
        return result
    }

    /// The sub-block rows `rows`, columns `cols` of every channel, as a new tensor.
    public func crop(rows: Range<Int>, cols: Range<Int>) -> Tensor {
        let result = Tensor(shape: [channels, rows.count, cols.count])
        for c in 0..<channels {
            for (i, y) in rows.enumerated() {
                (result.channel(c) + i * cols.count).update(from: channel(c) + y * width + cols.lowerBound, count: cols.count)
            }
        }
        return result
    }
}

/// Arenas for callers that may run at once (one model shared by several monitors): each call takes an
/// arena no other call is using, and gives it back after. As many arenas as calls ever ran together.
public final class ArenaPool: Sendable {
    private let free = Mutex<[Arena]>([])

    public init() {}

    public func with<T>(_ body: (Arena) throws -> T) rethrows -> T {
        let arena = free.withLock { $0.popLast() } ?? Arena()
        defer { free.withLock { $0.append(arena) } }
        return try body(arena)
    }
}

/// Named tensors reused from one forward pass to the next, so activations are allocated once per size. A name's
/// memory is as large as the largest shape asked for under it; layers that run one after another and whose
/// buffers die with them share a name, and so share the memory.
public final class Arena: @unchecked Sendable {
    private var storage: [String: Tensor] = [:]
    private var views: [String: Tensor] = [:]

    public init() {}

    /// The tensor named `name` with `shape`. Its contents are whatever the previous user of the name left there.
    public func tensor(_ name: String, _ shape: [Int]) -> Tensor {
        if let view = views[name], view.shape == shape { return view }
        let count = shape.reduce(1, *)
        let memory: Tensor
        if let existing = storage[name], existing.count >= count {
            memory = existing
        } else {
            memory = Tensor(shape: [count])
            storage[name] = memory
        }
        let view = Tensor(viewing: memory, shape: shape)
        views[name] = view
        return view
    }

    /// Bytes held.
    public var bytes: Int { storage.values.reduce(0) { $0 + $1.count * 4 } }
    public var tensorCount: Int { storage.count }
}

/// Recycles the memory of large tensors. Each frame allocates the same few large maps (the levels the decoder reads,
/// the decoder's last level) and frees them a few frames later; fresh memory from the system costs a page fault per
/// 4 KiB, more than filling it does. Freed blocks of at least `minimumCount` floats wait here for the next tensor of
/// the same size, up to `budgetBytes` in all; beyond that they go back to the system. The budget covers every frame
/// the monitor has in flight at 1024x512 (54 MB of maps each, several frames between the backbone and the
/// clustering): with 96 MB a run still faulted in fresh pages for a frame's maps every frame, 8% of its CPU time
/// (page faults and zeroing), and ran at 10.4 frames/s against 11.3 with this budget, its peak memory 486 MB
/// against 498 MB (what waits here is memory the frames in flight held a moment before).
enum TensorMemory {
    static let minimumCount = 1 << 16
    static let budgetBytes = 320 << 20
    // Addresses of free blocks by size in floats, and the bytes they hold.
    private static let free = Mutex<(blocks: [Int: [UInt]], bytes: Int)>(([:], 0))

    static func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count >= minimumCount {
            let address = free.withLock { state -> UInt? in
                guard let address = state.blocks[count]?.popLast() else { return nil }
                state.bytes -= count * 4
                return address
            }
            if let address, let block = UnsafeMutablePointer<Float>(bitPattern: address) { return block }
        }
        let block = UnsafeMutablePointer<Float>.allocate(capacity: count)
        block.initialize(repeating: 0, count: count)  // initialised once, so reads of reused memory are defined
        return block
    }

    static func give(_ block: UnsafeMutablePointer<Float>, _ count: Int) {
        let address = UInt(bitPattern: block)
        let kept = count >= minimumCount && free.withLock { state -> Bool in
            guard state.bytes + count * 4 <= budgetBytes else { return false }
            state.blocks[count, default: []].append(address)
            state.bytes += count * 4
            return true
        }
        if !kept { block.deallocate() }
    }
}

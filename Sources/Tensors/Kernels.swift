import CKernels

/// The instruction set the convolution kernels (`CKernels`) run on. Each kernel is compiled for every set and the
/// widest the CPU has is used, so one binary runs everywhere and uses AVX-512 where it exists.
public enum KernelSet: Int, Sendable, CaseIterable, CustomStringConvertible {
    case generic = 0, avx2 = 1, avx512 = 2

    public var description: String {
        switch self {
        case .generic: "generic"
        case .avx2: "avx2"
        case .avx512: "avx512"
        }
    }

    public init?(name: String) {
        guard let set = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = set
    }
}

public enum Kernels {
    /// The widest set this CPU runs.
    public static var supported: KernelSet { KernelSet(rawValue: Int(rw_isa_supported())) ?? .generic }

    /// The set in use on this task: the one `using` gives, else the process's.
    public static var current: KernelSet { override ?? process }

    /// The process's set: the widest supported unless `select` chose another.
    public static var process: KernelSet { KernelSet(rawValue: Int(rw_isa_current())) ?? .generic }

    @TaskLocal static var override: KernelSet?

    /// Runs `body` with the kernels on `set` (or the widest supported one below it), for this task only: the
    /// operations it starts read the set on the calling thread and hand it to the threads that share the work.
    public static func using<R>(_ set: KernelSet, _ body: () throws -> R) rethrows -> R {
        let usable = KernelSet(rawValue: min(set.rawValue, supported.rawValue)) ?? .generic
        return try $override.withValue(usable, operation: body)
    }

    /// `current` as the kernels' argument.
    static var argument: Int32 { Int32(current.rawValue) }

    /// Uses `set`, or the widest supported one below it; returns the set in use.
    @discardableResult
    public static func select(_ set: KernelSet) -> KernelSet {
        KernelSet(rawValue: Int(rw_isa_select(Int32(set.rawValue)))) ?? .generic
    }
}

/// `body` with the array's base address, or nil.
@inline(__always)
func withOptionalBuffer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}

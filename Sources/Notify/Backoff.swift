import Foundation

/// How long to wait before each reconnection attempt: an initial delay that grows by a factor per failure, up to a cap.
///
/// A value, not a timer: the part that reconnects keeps its own count of consecutive failures and asks for the
/// delay. The count starts again at zero once a connection succeeds, so a broker that restarts once a week is
/// retried after `initial`, not after `maximum`.
public struct Backoff: Sendable, Hashable, CustomStringConvertible {
    /// The delay before the first retry.
    public var initial: Duration
    /// The factor applied per further consecutive failure (1 keeps the delay constant).
    public var multiplier: Double
    /// The longest delay, reached after enough failures and kept from then on.
    public var maximum: Duration

    /// A policy; `initial` must be positive, `multiplier` at least 1 and `maximum` at least `initial`
    /// (settings from a file are checked by the configuration layer before they get here).
    public init(initial: Duration = .seconds(1), multiplier: Double = 2, maximum: Duration = .seconds(60)) {
        precondition(initial > .zero, "Backoff.initial must be positive")
        precondition(multiplier >= 1 && multiplier.isFinite, "Backoff.multiplier must be a finite number >= 1")
        precondition(maximum >= initial, "Backoff.maximum must be at least Backoff.initial")
        self.initial = initial
        self.multiplier = multiplier
        self.maximum = maximum
    }

    /// The wait before the next attempt after `failures` consecutive failed ones (0: the first retry).
    public func delay(afterFailures failures: Int) -> Duration {
        let start = Self.seconds(initial), cap = Self.seconds(maximum)
        // pow overflows to +infinity for long outages; min() then yields the cap, so no overflow check is needed.
        let grown = start * pow(multiplier, Double(max(0, failures)))
        return grown >= cap ? maximum : .seconds(grown)
    }

    public var description: String {
        "backoff \(Self.seconds(initial))s × \(multiplier) up to \(Self.seconds(maximum))s"
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }
}

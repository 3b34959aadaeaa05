import Foundation
import Synchronization
import VideoIO

/// The monitor's input: frames of one source, reopened with backoff when it ends or fails, numbered
/// without breaks across reopenings, optionally stamped by the wall clock, and cut at a frame or time limit.
///
/// Pull-based: a slow consumer makes it wait. `NewestFrames` on top of it gives the live policy.
public final class FrameFeed: AsyncSequence, Sendable {
    public typealias Element = VideoFrame

    public struct Policy: Sendable {
        /// Failed attempts in a row before giving up; 0 gives up at once, `nil` never.
        public var reconnectMax: Int?
        /// Retry the very first open too (otherwise a source that cannot be opened is an error at once).
        public var retryFirstOpen = false
        public var backoffStart = 0.5
        public var backoffMax = 10.0
        /// Replace the source's timestamps with milliseconds of wall-clock time since the feed started
        /// (time base 1/1000): continuous across reconnects, right for live sources.
        public var wallClockTimestamps = false
        public var maxFrames: Int?
        /// Stop once a frame's time (from the first frame) reaches this many seconds.
        public var duration: Double?
        /// Hand frames out no faster than their media time (a recording read as if it were a camera).
        public var realTime = false
        /// Start a file again from its beginning when it ends (demos and tests of the service); the frame
        /// after the jump starts K-Means and the temporal state afresh.
        public var loop = false

        public init(reconnectMax: Int? = 0) { self.reconnectMax = reconnectMax }
    }

    public enum Event: Sendable {
        /// Reading stopped with `reason`; the next attempt comes after `delay` seconds.
        case lost(reason: String, attempt: Int, delay: Double)
        /// Frames again, after `gap` seconds without.
        case reconnected(gap: Double)
        case gaveUp(reason: String)
    }

    private struct State {
        var source: VideoSource?
        var stopped = false
        var reconnects = 0
        var frames = 0
    }

    /// What the feed reads.
    public let url: String
    private let options: InputOptions
    private let policy: Policy
    private let onEvent: @Sendable (Event) -> Void
    private let state: Mutex<State>
    /// The time base of the frames handed out.
    public let timeBase: Rational

    /// Opens `url`; fails as `VideoSource.open` does unless the policy retries the first open.
    public static func open(_ url: String, options: InputOptions, policy: Policy,
                            onEvent: @escaping @Sendable (Event) -> Void = { _ in }) async throws -> FrameFeed {
        var attempt = 0
        while true {
            do {
                let source = try await VideoSource.open(url, options: options)
                return FrameFeed(url: url, options: options, policy: policy, first: source, onEvent: onEvent)
            } catch {
                guard policy.retryFirstOpen, policy.reconnectMax.map({ attempt < $0 }) ?? true else { throw error }
                let delay = FrameFeed.backoff(attempt, policy)
                attempt += 1
                onEvent(.lost(reason: String(describing: error), attempt: attempt, delay: delay))
                try await Task.sleep(for: .seconds(delay))
            }
        }
    }

    private init(url: String, options: InputOptions, policy: Policy, first: VideoSource,
                 onEvent: @escaping @Sendable (Event) -> Void) {
        self.url = url
        self.options = options
        self.policy = policy
        self.onEvent = onEvent
        state = Mutex(State(source: first))
        timeBase = policy.wallClockTimestamps ? Rational(1, 1000) : first.info.timeBase
        info = first.info
        audio = first.audio
    }

    /// What the source was when first opened.
    public let info: MediaInfo
    public let audio: AudioStreamInfo?

    public var reconnects: Int { state.withLock { $0.reconnects } }
    /// Frames handed out so far.
    public var framesRead: Int { state.withLock { $0.frames } }

    /// Ends the feed: no more reconnecting, and a blocked read returns.
    public func stop() async {
        let source = state.withLock { s -> VideoSource? in
            s.stopped = true
            return s.source
        }
        await source?.close()
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    static func backoff(_ attempt: Int, _ policy: Policy) -> Double {
        Swift.min(policy.backoffMax, policy.backoffStart * pow(2, Double(Swift.min(attempt, 30))))
    }

    public func makeAsyncIterator() -> Iterator { Iterator(feed: self) }

    public struct Iterator: AsyncIteratorProtocol {
        fileprivate let feed: FrameFeed
        private var current: VideoSource.Iterator?
        private var started: ContinuousClock.Instant?
        private var firstTime: Double?
        private var lastPTS: Int64 = -1
        private var pendingGap: Double?
        /// Real-time pacing: when this pass of the source started, and its first frame's media time.
        private var pace: (start: ContinuousClock.Instant, origin: Double)?

        fileprivate init(feed: FrameFeed) { self.feed = feed }

        /// Waits until `frame`'s media time has come on the wall clock (since this pass began).
        private mutating func waitForItsTime(_ frame: VideoFrame) async throws {
            guard feed.policy.realTime else { return }
            guard let pace else {
                self.pace = (ContinuousClock.now, frame.time)
                return
            }
            let due = pace.start + .seconds(Swift.max(0, Swift.min(frame.time - pace.origin, 1e6)))
            while ContinuousClock.now < due && !feed.isStopped {
                try await Task.sleep(until: Swift.min(due, ContinuousClock.now + .milliseconds(100)), clock: .continuous)
            }
        }

        /// A looped file ended: open it again at once. False when it cannot be (the caller reconnects).
        private mutating func restart() async -> Bool {
            if let old = feed.state.withLock({ s -> VideoSource? in
                defer { s.source = nil }
                return s.source
            }) { await old.close() }
            current = nil
            guard !feed.isStopped, let source = try? await VideoSource.open(feed.url, options: feed.options) else { return false }
            let keep = feed.state.withLock { s -> Bool in
                guard !s.stopped else { return false }
                s.source = source
                return true
            }
            guard keep else {
                await source.close()
                return false
            }
            pace = nil
            pendingGap = 0
            return true
        }

        public mutating func next() async throws -> VideoFrame? {
            while true {
                if feed.isStopped { return nil }
                if let limit = feed.policy.maxFrames, feed.framesRead >= limit { return nil }
                if current == nil {
                    guard let source = feed.state.withLock({ $0.source }) else { return nil }
                    current = source.makeAsyncIterator()
                }
                var failure: (any Error)?
                var frame: VideoFrame?
                do {
                    frame = try await current!.next()
                } catch {
                    failure = error
                }
                if var frame {
                    try await waitForItsTime(frame)
                    if let duration = feed.policy.duration {
                        let t = started?.secondsSince ?? 0
                        let time = feed.policy.wallClockTimestamps ? t : frame.time - (firstTime ?? frame.time)
                        if firstTime == nil { firstTime = frame.time }
                        if time >= duration { return nil }
                    }
                    return stamp(&frame)
                }
                // The source ended or failed.
                if feed.isStopped { return nil }
                if failure == nil && feed.policy.loop && feed.framesRead > 0, await restart() { continue }
                let reason = failure.map { String(describing: $0) } ?? "the source ended"
                guard try await reopen(reason: reason, error: failure) else { return nil }
            }
        }

        private mutating func stamp(_ frame: inout VideoFrame) -> VideoFrame {
            let now = ContinuousClock.now
            if started == nil { started = now }
            frame.index = feed.state.withLock { s in
                defer { s.frames += 1 }
                return s.frames
            }
            if feed.policy.wallClockTimestamps {
                let ms = Int64((started!.secondsSince * 1000).rounded())
                frame.pts = Swift.max(lastPTS + 1, ms)
                frame.timeBase = feed.timeBase
                frame.audio = []
            }
            lastPTS = frame.pts
            frame.gapBefore = pendingGap
            pendingGap = nil
            return frame
        }

        /// Closes the old source and opens it again with backoff; false when the policy says to give up.
        private mutating func reopen(reason: String, error: (any Error)?) async throws -> Bool {
            let lostAt = ContinuousClock.now
            if let old = feed.state.withLock({ s -> VideoSource? in
                defer { s.source = nil }
                return s.source
            }) { await old.close() }
            current = nil
            var attempt = 0
            var why = reason
            while true {
                if feed.isStopped { return false }
                guard feed.policy.reconnectMax.map({ attempt < $0 }) ?? true else {
                    // Without reconnecting (files) the end is just the end; after attempts it is giving up.
                    if attempt > 0 { feed.onEvent(.gaveUp(reason: why)) }
                    if let error { throw error }
                    return false
                }
                let delay = FrameFeed.backoff(attempt, feed.policy)
                attempt += 1
                feed.onEvent(.lost(reason: why, attempt: attempt, delay: delay))
                // Wait in short steps so a stop (Ctrl-C) during a long backoff ends the run at once.
                let until = ContinuousClock.now + .seconds(delay)
                while ContinuousClock.now < until && !feed.isStopped { try await Task.sleep(for: .milliseconds(50)) }
                if feed.isStopped { return false }
                do {
                    let source = try await VideoSource.open(feed.url, options: feed.options)
                    let keep = feed.state.withLock { s -> Bool in
                        guard !s.stopped else { return false }
                        s.source = source
                        s.reconnects += 1
                        return true
                    }
                    guard keep else {
                        await source.close()
                        return false
                    }
                    let gap = lostAt.secondsSince
                    pendingGap = gap
                    pace = nil
                    feed.onEvent(.reconnected(gap: gap))
                    return true
                } catch {
                    why = String(describing: error)
                }
            }
        }
    }
}

/// The live policy: a reader pulls frames from `base` as fast as they come and keeps only the newest
/// one for the consumer, so the consumer always gets the latest frame and never makes the source wait.
/// Every frame replaced before it was taken counts as dropped.
public final class NewestFrames<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable
where Base.Element == VideoFrame {
    public typealias Element = VideoFrame

    private let base: Base
    private let counters = Mutex((read: 0, dropped: 0))

    public init(_ base: Base) { self.base = base }

    public var framesRead: Int { counters.withLock { $0.read } }
    public var framesDropped: Int { counters.withLock { $0.dropped } }

    public func makeAsyncIterator() -> AsyncThrowingStream<VideoFrame, any Error>.Iterator {
        let (stream, continuation) = AsyncThrowingStream<VideoFrame, any Error>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let reader = Task { [self] in
            do {
                for try await var frame in base {
                    frame.droppedBefore = self.counters.withLock { c in
                        c.read += 1
                        return c.dropped
                    }
                    if case .dropped = continuation.yield(frame) {
                        self.counters.withLock { $0.dropped += 1 }
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return stream.makeAsyncIterator()
    }
}

import Foundation
import Synchronization

/// Progress of long work on stderr: a redrawn bar when stderr is a terminal, a plain line every few
/// seconds when it is not (logs, CI), nothing when quiet.
final class Progress: Sendable {
    private let total: Int?
    private let unit: String
    private let quiet: Bool
    private let interactive = isatty(STDERR_FILENO) != 0
    private let started = Date()
    private struct State {
        var lastPlainLine = Date.distantPast
        var lastDraw = Date.distantPast
        var done = 0
    }

    private let state = Mutex(State())
    var done: Int { state.withLock { $0.done } }

    init(total: Int?, unit: String, quiet: Bool = false) {
        self.total = total
        self.unit = unit
        self.quiet = quiet
    }

    var elapsed: Double { Date().timeIntervalSince(started) }

    func advance(by n: Int = 1, note: String = "") {
        let line: String? = state.withLock { s in
            s.done += n
            let done = s.done
            guard !quiet else { return nil }
            let now = Date()
            let rate = Double(done) / max(elapsed, 1e-9)
            var text = "\(done)"
            if let total { text += "/\(total)" }
            text += " \(unit)  \(String(format: "%.2f", rate)) \(unit)/s"
            if let total, rate > 0, done < total { text += "  ETA \(Int((Double(total - done) / rate).rounded())) s" }
            if !note.isEmpty { text += "  \(note)" }
            if interactive {
                guard now.timeIntervalSince(s.lastDraw) > 0.1 || done == total else { return nil }
                s.lastDraw = now
                var bar = ""
                if let total, total > 0 {
                    let width = 24, filled = min(width, done * width / total)
                    bar = "[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled) + "] "
                }
                return "\r\u{1B}[2K" + bar + text
            } else if now.timeIntervalSince(s.lastPlainLine) >= 5 || done == total {
                s.lastPlainLine = now
                return "roadwatch: " + text + "\n"
            }
            return nil
        }
        if let line { Console.write(line) }
    }

    /// Ends the bar's line.
    func finish() {
        if interactive && !quiet && done > 0 { Console.write("\n") }
    }
}

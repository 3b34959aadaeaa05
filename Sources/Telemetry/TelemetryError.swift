import Foundation

/// Why a telemetry file or track could not be read: one line naming the file and the problem.
public struct TelemetryError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file (or in-memory name) the problem is in.
    public let file: String
    /// What is wrong, in words, without the file name.
    public let problem: String

    public init(file: String, problem: String) {
        self.file = file
        // Messages are shown one per line in logs and warnings lists; a newline from a payload must not split one.
        self.problem = problem.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
    }

    public var description: String { "\(file): \(problem)" }
}

extension TelemetryError {
    /// Runs `body` and names `file` in whatever it throws, so parsers need not carry the name around.
    static func naming<T>(_ file: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TelemetryError {
            throw error
        } catch let error as Malformed {
            throw TelemetryError(file: file, problem: error.problem)
        } catch {
            throw TelemetryError(file: file, problem: String(describing: error))
        }
    }
}

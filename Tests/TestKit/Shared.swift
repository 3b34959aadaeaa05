import Foundation

/// Where the project's shared test data lives: `$ROADWATCH_SHARED`, else `../shared` beside the repository.
public enum Shared {
    public static let root: URL = {
        if let path = ProcessInfo.processInfo.environment["ROADWATCH_SHARED"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }()

    /// The repository's top folder, found from this file's place in it.
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A file under the shared root, e.g. `path("data/videos/solidWhiteRight.mp4")`.
    public static func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }
}

/// A fresh folder for one test's files, removed when dropped.
public final class ScratchDirectory: @unchecked Sendable {
    public let url: URL

    public init(_ name: String = "test") throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("roadwatch-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

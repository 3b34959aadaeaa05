// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "roadwatch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "roadwatch", targets: ["roadwatch"]),
        .library(name: "VideoIO", targets: ["VideoIO"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Thin C shims: a module map and a header each, no logic.
        .systemLibrary(
            name: "CFFmpeg",
            pkgConfig: "libavformat libavcodec libavutil libswscale libavdevice",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libavdevice-dev"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),

        // The only module that touches FFmpeg pointers.
        .target(name: "VideoIO", dependencies: ["CFFmpeg"]),

        .executableTarget(
            name: "roadwatch",
            dependencies: [
                "VideoIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Helpers shared by the test targets: where ../shared is, scratch folders, running the binary.
        .target(name: "TestKit", path: "Tests/TestKit"),
        .testTarget(name: "VideoIOTests", dependencies: ["VideoIO", "TestKit"]),
        .testTarget(name: "RoadwatchCLITests", dependencies: ["TestKit", "roadwatch"]),
    ],
    swiftLanguageModes: [.v6]
)

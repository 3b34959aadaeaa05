// swift-tools-version:6.0
import PackageDescription

/// `.ci/sanitize` builds only the modules with pointer code and their test suites under AddressSanitizer
/// (`ROADWATCH_SANITIZE=address`, see the end of this file): the service, the web layer and the binary hold no
/// pointer code of roadwatch's and would only add instrumented rebuilds.
let sanitizeSubset = Context.environment["ROADWATCH_SANITIZE"] == "address"
/// `tools/fuzz` and `.ci/fuzz` (`ROADWATCH_FUZZ=1`): the libFuzzer entry point as a product, and roadwatch's own
/// modules built with coverage for libFuzzer and AddressSanitizer (see the end of this file).
let fuzzing = Context.environment["ROADWATCH_FUZZ"] != nil
let outsideSubset: Set<String> = ["Service", "Web", "roadwatch", "RoadwatchCLITests", "ServiceTests", "WebTests"]

let package = Package(
    name: "roadwatch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "roadwatch", targets: ["roadwatch"]),
        .library(name: "VideoIO", targets: ["VideoIO"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "ONNX", targets: ["ONNX"]),
        .library(name: "Anomaly", targets: ["Anomaly"]),
        .library(name: "Overlay", targets: ["Overlay"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Monitoring", targets: ["Monitoring"]),
        .library(name: "Service", targets: ["Service"]),
        .library(name: "Web", targets: ["Web"]),
        .library(name: "Telemetry", targets: ["Telemetry"]),
        .library(name: "Notify", targets: ["Notify"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
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

        // glibc's mallopt (Linux only), to cap the allocator's per-thread heaps.
        .systemLibrary(name: "CMalloc"),

        // The only module that touches FFmpeg pointers.
        .target(name: "VideoIO", dependencies: ["CFFmpeg"]),

        // The convolution kernels in C, each compiled per instruction set (AVX-512, AVX2, baseline) and chosen at
        // run time: Swift has no per-function target, and one module built for AVX-512 would fault on older CPUs.
        .target(name: "CKernels"),

        // Float32 tensors and the operations the models need, GEMM through OpenBLAS.
        .target(name: "Tensors", dependencies: ["COpenBLAS", "CKernels"]),
        // ONNX models run on the tensor operations: the file (protobuf, generated once from Proto/ and
        // committed), the operators, constant folding for a fixed input size.
        .target(
            name: "ONNX",
            dependencies: ["Tensors", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Proto"]
        ),
        // Weight files, architectures, the model registry.
        .target(
            name: "Models",
            dependencies: [
                "Tensors", "ONNX", "VideoIO",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            resources: [.copy("Resources/espnetv2-cityscapes")]
        ),

        // The method: confidence, K-Means, cluster thresholding, anomaly maps, regions, metrics. No FFmpeg.
        .target(name: "Anomaly", dependencies: ["Tensors"]),

        // The method run over frames: per-frame analysis now, the actor stages of the monitor on top.
        .target(
            name: "Pipeline",
            dependencies: [
                "Anomaly", "Models", "Tensors", "VideoIO", "Overlay",
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                // Latency quantiles from a fixed-size histogram: a service runs for months, a list of latencies
                // would grow by one Double a frame.
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        // Running sources through the monitor into sinks: the live policy, stop control, the annotated video
        // (one file or segments), the events file, mask PNGs, the run summary, the resumable batch, evaluation.
        .target(name: "Monitoring", dependencies: ["Pipeline", "Anomaly", "Models", "VideoIO", "Overlay", "Tensors", "Telemetry"]),

        // roadwatch watch: the YAML config, many cameras on one model, retention, logs.
        .target(
            name: "Service",
            dependencies: [
                "Monitoring", "Pipeline", "Models", "Anomaly", "Overlay", "VideoIO",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The service's web side: the page, the API, previews, /metrics, health, the SQLite event store, webhooks.
        .target(
            name: "Web",
            dependencies: [
                "Service", "Monitoring", "Pipeline", "Overlay", "VideoIO", "Notify",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The OpenAPI document, compiled into the binary: served at /api/openapi.json wherever the binary is
            // installed, and checked against the router by WebTests.
            resources: [.embedInCode("Resources/openapi.json")]
        ),

        // GPS tracks of dashcam files (GoPro GPMF, CAMM, Novatek freeGPS, NMEA, GPX, DJI SRT): the MP4 boxes
        // and each format read with bounds-checked readers, into a track on the video's clock. Foundation only.
        .target(name: "Telemetry"),

        // MQTT through libmosquitto: a thin shim, and all its pointer work in one Swift file (Notify).
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .target(name: "Notify", dependencies: ["CMosquitto"]),

        // Drawing into RGB frames: segmentation tints, heat maps, contours, the HUD.
        .target(name: "Overlay", dependencies: ["VideoIO"]),

        .executableTarget(
            name: "roadwatch",
            dependencies: [
                "VideoIO",
                "Models",
                "Overlay",
                "Tensors",
                "Anomaly",
                "Pipeline",
                "Monitoring",
                "Service",
                "Web",
                "Telemetry",
                .product(name: "Logging", package: "swift-log"),
                .target(name: "CMalloc", condition: .when(platforms: [.linux])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Helpers shared by the test targets: where ../shared is, scratch folders, running the binary.
        .target(name: "TestKit", path: "Tests/TestKit"),
        .testTarget(name: "VideoIOTests", dependencies: ["VideoIO", "TestKit"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestKit"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Anomaly", "Models", "VideoIO", "Overlay", "TestKit"]),
        .testTarget(name: "AnomalyTests", dependencies: ["Anomaly", "Tensors", "Models", "VideoIO", "TestKit"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "ONNX", "VideoIO", "TestKit"], exclude: ["Fixtures"]),
        .testTarget(name: "ONNXTests", dependencies: ["ONNX", "Models", "Tensors", "TestKit"], exclude: ["Fixtures"]),
        .testTarget(
            name: "MonitoringTests",
            dependencies: ["Monitoring", "Pipeline", "Anomaly", "Models", "VideoIO", "TestKit", "Telemetry",
                           .product(name: "AsyncAlgorithms", package: "swift-async-algorithms")]
        ),
        .testTarget(name: "RoadwatchCLITests", dependencies: ["TestKit", "Models", "VideoIO", "Notify", "Telemetry", "Monitoring", "roadwatch"]),
        .testTarget(name: "ServiceTests", dependencies: ["Service", "Monitoring", "TestKit"]),
        .testTarget(name: "WebTests", dependencies: ["Web", "Service", "Monitoring", "TestKit",
                                                   .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry"]),
        .testTarget(name: "NotifyTests", dependencies: ["Notify", "TestKit"]),
    ],
    swiftLanguageModes: [.v6]
)

if fuzzing {
    // libFuzzer brings `main`; the target defines `LLVMFuzzerTestOneInput` and chooses its parser by name.
    package.products.append(.executable(name: "RoadwatchFuzz", targets: ["RoadwatchFuzz"]))
    package.targets.append(.executableTarget(
        name: "RoadwatchFuzz",
        dependencies: ["ONNX", "Models", "Service", "Web", "Telemetry"],
        path: "Tests/Fuzz",
        swiftSettings: [.unsafeFlags(["-parse-as-library"])],
        linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]
    ))
}

if sanitizeSubset {
    package.targets.removeAll { outsideSubset.contains($0.name) }
    package.products.removeAll { outsideSubset.contains($0.name) }
}

/// Flags on roadwatch's own targets only, from the environment; both are off by default, so the package stays
/// usable as a dependency (SwiftPM refuses unsafe flags there).
/// - `ROADWATCH_OPTIMIZE_OWN=1` (set by the README's test command, which CI runs): in a debug build, roadwatch's
///   own modules, C kernels and tests are optimised as in a release build, while the dependencies (NIO, BoringSSL,
///   Hummingbird, GRDB, the HTTP client) build without optimisation. They carry no numeric work, and on a 2-core
///   machine their optimised build took most of a 21-minute release build.
/// - `ROADWATCH_SANITIZE=address` (`.ci/sanitize`): AddressSanitizer on roadwatch's own modules, over the subset
///   above. The dependencies keep their flags, so in the same build folder they are not built again.
/// - `ROADWATCH_FUZZ=1`: libFuzzer's coverage and AddressSanitizer on the modules that parse outside input (the
///   fuzz targets' code), AddressSanitizer alone on the rest of roadwatch's, as `.ci/sanitize` builds them: run
///   after it, only the parsing modules are built again. The dependencies again keep their flags.
let fuzzedModules: Set<String> = ["ONNX", "Models", "Telemetry", "Service", "Web", "RoadwatchFuzz"]
let ownFlags = (optimize: Context.environment["ROADWATCH_OPTIMIZE_OWN"] != nil,
                sanitize: sanitizeSubset || fuzzing, fuzz: fuzzing)
for target in package.targets where target.type != .system {
    if ownFlags.optimize {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-O"], .when(configuration: .debug))]
        target.cSettings = (target.cSettings ?? []) + [.unsafeFlags(["-O2"], .when(configuration: .debug))]
    }
    if ownFlags.fuzz && fuzzedModules.contains(target.name) {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-sanitize=fuzzer,address"])]
    } else if ownFlags.sanitize {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-sanitize=address"])]
        target.cSettings = (target.cSettings ?? []) + [.unsafeFlags(["-fsanitize=address", "-fno-omit-frame-pointer"])]
        target.linkerSettings = (target.linkerSettings ?? []) + [.unsafeFlags(["-sanitize=address"])]
    }
}

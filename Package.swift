// swift-tools-version:6.0
// LeadFlow: Facebook Lead Ads → Integrate, as a batch pipeline.
// Layers (see docs/architecture.md, "Layout"): a pure core; one thin adapter per C library, each the
// only importer of its C module; the store (schema and queries); test support; the CLI.
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "LeadFlow",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "leadflow", targets: ["leadflow"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries, as Debian ships them; headers found through pkg-config.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CLibArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),

        // The pure core: domain types, policies, protocols of the outside world. No C, no I/O.
        .target(name: "LeadFlowCore", swiftSettings: strict),

        // One adapter per C library.
        .target(name: "LeadFlowHTTP",
                dependencies: ["CCurl", "LeadFlowCore", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .target(name: "LeadFlowPostgres",
                dependencies: ["CLibPQ", "LeadFlowCore", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .target(name: "LeadFlowArchive",
                dependencies: ["CLibArchive", "LeadFlowCore", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: strict),

        // Pipeline files (YAML): the only importer of Yams.
        .target(name: "LeadFlowPipelineFile",
                dependencies: ["LeadFlowCore", .product(name: "Yams", package: "Yams")],
                swiftSettings: strict),

        // The schema (versioned migrations) and, later, the queries the stages need.
        .target(name: "LeadFlowStore",
                dependencies: ["LeadFlowCore", "LeadFlowPostgres", .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // The Graph API client, written against the core's HTTPTransport.
        .target(name: "LeadFlowGraph",
                dependencies: ["LeadFlowCore", .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // The stages (preflight, extract, …), written against the core's protocols.
        .target(name: "LeadFlowStages",
                dependencies: ["LeadFlowCore", "LeadFlowGraph", .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // The Graph fake: the documented Graph behaviour on loopback (its own small HTTP
        // server), played from a scenario. Tests, benchmarks and `leadflow demo` use it.
        .target(name: "LeadFlowGraphFake",
                dependencies: ["LeadFlowCore", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),

        // `leadflow demo`: the whole story on the Graph fake with an injected clock. Its
        // scenario is compiled into the binary (Resources/demo.json links to
        // fixtures/scenarios/demo.json), so an installed leadflow needs no source tree and no
        // resource bundle beside it.
        .target(name: "LeadFlowDemo",
                dependencies: ["LeadFlowCore", "LeadFlowGraphFake", "LeadFlowGraph", "LeadFlowHTTP", "LeadFlowStages", "LeadFlowStore",
                               "LeadFlowPostgres", "LeadFlowArchive", .product(name: "Logging", package: "swift-log")],
                resources: [.embedInCode("Resources/demo.json")],
                swiftSettings: strict),

        // Test support: fixtures, the test database, doubles (and the Graph fake, re-exported).
        .target(name: "LeadFlowTestSupport",
                dependencies: ["LeadFlowCore", "LeadFlowPostgres", "LeadFlowGraphFake", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // The CLI: parses, wires, prints.
        .executableTarget(name: "leadflow",
                          dependencies: [
                              "LeadFlowCore", "LeadFlowPostgres", "LeadFlowStore", "LeadFlowHTTP", "LeadFlowGraph", "LeadFlowStages",
                              "LeadFlowArchive", "LeadFlowPipelineFile", "LeadFlowDemo",
                              .product(name: "ArgumentParser", package: "swift-argument-parser"),
                              .product(name: "Logging", package: "swift-log"),
                          ],
                          swiftSettings: strict),

        // The Graph fake as a process (benchmarks, trying LeadFlow by hand).
        .executableTarget(name: "graph-fake", dependencies: ["LeadFlowGraphFake", "LeadFlowCore"], swiftSettings: strict),

        // Property-based fuzzing of the Graph page and pipeline-file parsers (scripts/fuzz.sh).
        .executableTarget(name: "LeadFlowFuzz", dependencies: ["LeadFlowCore", "LeadFlowPipelineFile"], swiftSettings: strict),

        // Benchmarks (release builds, run by scripts/bench-*.sh).
        .executableTarget(name: "LeadFlowBench",
                          dependencies: ["LeadFlowPostgres", "LeadFlowStore", "LeadFlowGraph", "LeadFlowStages", "LeadFlowHTTP", "LeadFlowCore",
                                         "LeadFlowTestSupport"],
                          swiftSettings: strict),

        .testTarget(name: "LeadFlowCoreTests", dependencies: ["LeadFlowCore", "LeadFlowTestSupport"], swiftSettings: strict),
        .testTarget(name: "LeadFlowPipelineFileTests",
                    dependencies: ["LeadFlowPipelineFile", "LeadFlowCore", "LeadFlowTestSupport"], swiftSettings: strict),
        .testTarget(name: "LeadFlowStagesTests",
                    dependencies: ["LeadFlowStages", "LeadFlowGraph", "LeadFlowStore", "LeadFlowPostgres", "LeadFlowHTTP", "LeadFlowArchive",
                                   "LeadFlowTestSupport", .product(name: "Logging", package: "swift-log")],
                    swiftSettings: strict),
        .testTarget(name: "LeadFlowGraphTests",
                    dependencies: ["LeadFlowGraph", "LeadFlowStages", "LeadFlowHTTP", "LeadFlowTestSupport",
                                   .product(name: "Logging", package: "swift-log")],
                    swiftSettings: strict),
        .testTarget(name: "LeadFlowHTTPTests",
                    dependencies: ["LeadFlowHTTP", "LeadFlowTestSupport", .product(name: "Logging", package: "swift-log")],
                    swiftSettings: strict),
        .testTarget(name: "LeadFlowPostgresTests",
                    dependencies: ["LeadFlowPostgres", "LeadFlowTestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "LeadFlowArchiveTests",
                    dependencies: ["LeadFlowArchive", "LeadFlowTestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "LeadFlowStoreTests",
                    dependencies: ["LeadFlowStore", "LeadFlowPostgres", "LeadFlowTestSupport"],
                    swiftSettings: strict),
        // Yams: the deploy files' tests read the Kubernetes manifest's numbers.
        .testTarget(name: "LeadFlowCLITests",
                    dependencies: ["LeadFlowTestSupport", "LeadFlowPostgres", "LeadFlowStore", "LeadFlowCore",
                                   .product(name: "Yams", package: "Yams")],
                    swiftSettings: strict),
    ]
)

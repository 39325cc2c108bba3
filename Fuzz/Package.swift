// swift-tools-version:6.0
// libFuzzer targets for certreload's parsers of outside input. A package of its own so that
// `-sanitize=fuzzer` (libFuzzer's main) does not meet the certreload executable's main.
//
//   scripts/fuzz [SECONDS_PER_TARGET]        # build and run each target (default 10 s)
//   scripts/fuzz 3600 FuzzTOML               # a long run of one target
import PackageDescription

let targets = ["FuzzPEM", "FuzzTOML", "FuzzJSON", "FuzzVerifyURL", "FuzzStartTLS"]

let package = Package(
    name: "certreload-fuzz",
    dependencies: [.package(name: "certreload", path: "..")],
    targets: [.target(name: "FuzzDriver")] + targets.map { name in
        .executableTarget(
            name: name,
            dependencies: ["FuzzDriver", .product(name: "CertReload", package: "certreload")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])])
    }
)

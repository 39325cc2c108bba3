// swift-tools-version:6.0
import PackageDescription

// OpenSSL: on x86_64 loaded on first use (Sources/CCertReloadShims/openssl-lazy.S), so a
// command that never touches a certificate does not pay libcrypto's 4,891 symbol lookups at
// start; elsewhere linked as usual. The tests link it in any case (they call more of it).
#if arch(x86_64)
let openSSLLinked: [LinkerSetting] = []
#else
let openSSLLinked: [LinkerSetting] = [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
#endif

let package = Package(
    name: "certreload",
    products: [
        .executable(name: "certreload", targets: ["certreload"]),
        .library(name: "CertReload", targets: ["CertReload"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            providers: [.apt(["libssl-dev"])]),
        // libsystemd and libcurl: headers only. They are not linked but loaded on first use
        // (Sources/CCertReloadShims/lazy.c), so `check` does not pay for loading them.
        .systemLibrary(
            name: "CSystemd",
            providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(
            name: "CCurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CCertReloadShims", dependencies: ["COpenSSL", "CCurl", "CSystemd"], linkerSettings: openSSLLinked),
        .target(
            name: "CertReload",
            dependencies: [
                "COpenSSL", "CCertReloadShims", "CCurl", "CSystemd",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // `certreload demo` and the test fixtures it shares with the tests: a test CA, certbot's
        // layout on disk, loopback servers. Not part of the daemon's library.
        .target(
            name: "CertReloadDemo",
            dependencies: [
                "CertReload", "COpenSSL", "CCertReloadShims",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The command line as a table: parser, --help, man page and completions from it.
        .target(name: "CertReloadCommandLine", dependencies: ["CertReload"]),
        .executableTarget(
            name: "certreload",
            dependencies: [
                "CertReload", "CertReloadDemo", "CertReloadCommandLine",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "CertReloadTests", dependencies: ["CertReload", "CertReloadDemo", "CertReloadCommandLine", "CCertReloadShims", "COpenSSL"],
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
    ]
)

import CertReload
import CertReloadCommandLine
import Dispatch
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Loading the configuration the way every target command does: errors are exit status 2.
enum ConfiguredTargets {
    static func load(_ options: ConfigFileOptions) throws -> Configuration {
        let path = options.path
        do {
            return try ConfigurationLoader.load(path: path)
        } catch {
            throw UsageError("\(error)", fix: error.fix)
        }
    }

    /// The named targets, or all of them; an unknown name is a usage error.
    static func select(_ names: [String], from configuration: Configuration) throws -> [TargetConfiguration] {
        if names.isEmpty { return configuration.targets }
        return try names.map { name in
            guard let target = configuration.targets.first(where: { $0.name == name }) else {
                throw UsageError(
                    "no target '\(name)' in \(configuration.path)",
                    fix: "targets: \(configuration.targets.map(\.name).joined(separator: ", "))")
            }
            return target
        }
    }

    /// Runs each target's pipeline and prints its lines and problems; returns whether all succeeded.
    static func run(
        _ targets: [TargetConfiguration], configuration: Configuration, action: TargetPipeline.Action, logger: Logger
    ) async -> Bool {
        var allSucceeded = true
        let log = OutcomeLog(logger: logger)
        for target in targets {
            if Task.isCancelled {
                Output.write("[\(target.name)] not started: the time limit was reached; its server keeps its current certificate\n[\(target.name)] FAILED: failed\n")
                allSucceeded = false
                continue
            }
            let outcome = await TargetPipeline(configuration: configuration, target: target, logger: logger).run(action)
            Output.write(outcome.text)
            log.log(outcome)
            allSucceeded = allSucceeded && outcome.succeeded
        }
        return allSucceeded
    }

    /// Structured log entries go to journald (with CERTRELOAD_* fields and MESSAGE_IDs) when
    /// certreload runs under systemd or certbot's timer; on a terminal the report on standard
    /// output already says everything, so only critical entries reach standard error.
    static func logger() -> Logger {
        var logger = Logger(label: "certreload")
        logger.logLevel = LoggingBackend.fromEnvironment() == .journal ? .info : .critical
        return logger
    }
}

extension CertReloadCommand {
    static let targetsArgument = ArgumentSpec(name: "target", help: "Target names (default: all).", repeatable: true)

    /// `certreload deploy`: certbot's deploy hook.
    struct Deploy: RunnableCommand {
        static let spec = CommandSpec(
            name: "deploy",
            abstract: "certbot deploy hook: check, reload and verify every target using the renewed lineage.",
            discussion: """
                Reads RENEWED_LINEAGE (a path under <certbot-dir>/live/) and RENEWED_DOMAINS from certbot. For every target that uses that lineage: check it as the target's user (on any error the target is not reloaded and its server keeps its working certificate), reload the server, and verify over TLS that it serves the new certificate. Exit status 0 only if every target succeeded; 2 for a bad invocation or configuration.

                Install: certbot renew --deploy-hook 'certreload deploy', or put Packaging/certbot/certreload-deploy-hook into /etc/letsencrypt/renewal-hooks/deploy/ (certbot runs directory hooks only on renewal, not on first issuance).
                """,
            options: ConfigFileOptions.options + [
                OptionSpec(
                    name: "lineage", value: "name-or-live-dir",
                    help: "The lineage: its name or its live directory (default: $RENEWED_LINEAGE).", kind: .directory),
                OptionSpec(
                    name: "settle", value: "seconds",
                    help: "First wait until the lineage has been quiet this long and its links agree (for the certreload@.path unit); at most settle-max.",
                    kind: .number),
                OptionSpec(
                    name: "timeout", value: "seconds", help: "Give up after this many seconds in all (certbot waits for hooks without a limit).",
                    defaultText: "120", kind: .number),
            ],
            make: { parsed throws(UsageError) in try Deploy(parsed) })

        var config: ConfigFileOptions
        var lineage: String?
        var settle: Double?
        var timeout: Double

        init(_ parsed: ParsedArguments) throws(UsageError) {
            config = ConfigFileOptions(parsed)
            lineage = parsed.string("lineage")
            settle = try parsed.double("settle")
            timeout = try parsed.double("timeout") ?? 120
            guard timeout > 0 else { throw UsageError("--timeout must be more than 0") }
            if let settle, settle < 0 { throw UsageError("--settle must not be negative") }
        }

        nonisolated(nonsending) func run() async throws {
            guard let path = lineage ?? getenv("RENEWED_LINEAGE").map({ String(cString: $0) }), !path.isEmpty else {
                throw UsageError(
                    "no lineage: RENEWED_LINEAGE is not set",
                    fix: "run as certbot's deploy hook, or pass --lineage /etc/letsencrypt/live/NAME")
            }
            let configuration = try ConfiguredTargets.load(config)
            let live = CertbotDirectory(configuration.certbotDirectory).liveDirectory
            let name = try lineageName(path.contains("/") ? path : live + "/" + path, certbotDirectory: configuration.certbotDirectory)
            let domains = getenv("RENEWED_DOMAINS").map { String(cString: $0) } ?? ""
            let targets = configuration.targets.filter { $0.lineages.contains(name) }
            Output.write("certreload deploy: lineage \(name)\(domains.isEmpty ? "" : " (\(domains))"), \(targets.count) target(s)\n")
            if targets.isEmpty {
                Output.write("no target in \(configuration.path) uses lineage \(name): nothing to do\n")
                return
            }
            // The whole run is bounded: a hung server must not hang certbot. At the limit the
            // work is cancelled — commands' process groups killed, transfers aborted — and
            // awaited, so no state write is cut and nothing is left running.
            let (settle, seconds) = (self.settle, timeout)
            var logger = ConfiguredTargets.logger()
            logger[metadataKey: "certreload_lineage"] = "\(name)"
            let (ok, cutShort) = await withTimeLimit(seconds: seconds) { [logger] in
                if let settle {
                    let settleMax = configuration.watch.settleMax ?? 60
                    let result: SettleResult
                    do {
                        result = try await LineageSettling.wait(
                            certbotDirectory: configuration.certbotDirectory, lineage: name, settle: .seconds(settle),
                            settleMax: .seconds(max(settle, min(settleMax, seconds))),
                            waiting: { snapshot in
                                Output.write("lineage \(name) is not consistent yet (\(snapshot.summary)): waiting for it to settle, at most \(DurationText.seconds(min(settleMax, seconds)))\n")
                            })
                    } catch {
                        Output.standardError("certreload: \(error)")
                        return false
                    }
                    switch result {
                    case .consistent(let snapshot):
                        Output.write("lineage \(name) settled: \(snapshot.summary)\n")
                    case .inconsistent(let snapshot):
                        Output.write("lineage \(name) is still inconsistent after settle-max (\(snapshot.summary)): no target was reloaded\n")
                        return false
                    case .stopped:
                        return false
                    }
                }
                return await ConfiguredTargets.run(targets, configuration: configuration, action: .deploy, logger: logger)
            }
            if cutShort {
                let message = "certreload deploy: gave up after \(DurationText.seconds(seconds)) (--timeout): the work in flight was stopped; servers not yet reloaded keep their current certificate"
                Output.standardError(message)
                logger.error("\(message)", metadata: ["certreload_code": "deploy-timeout", "MESSAGE_ID": "\(MessageID.reloadFailed)"])
                throw ExitCode(1)
            }
            if !ok { throw ExitCode(1) }
        }

        /// The lineage name of a `live/NAME` path, refusing anything outside `<certbot-dir>/live/`.
        func lineageName(_ path: String, certbotDirectory: String) throws -> String {
            let live = CertbotDirectory(certbotDirectory).liveDirectory
            let real = realPath(path) ?? path
            let realLive = realPath(live) ?? live
            guard real.hasPrefix(realLive + "/") else {
                throw UsageError(
                    "refusing lineage \(path): it is not under \(live)",
                    fix: "certbot passes RENEWED_LINEAGE=\(live)/NAME; set certbot-dir in the configuration to the directory certbot uses")
            }
            let name = String(real.dropFirst(realLive.count + 1))
            guard !name.isEmpty, !name.contains("/") else {
                throw UsageError("refusing lineage \(path): expected \(live)/NAME")
            }
            return name
        }

        private func realPath(_ path: String) -> String? {
            guard let resolved = realpath(path, nil) else { return nil }
            defer { free(resolved) }
            return String(cString: resolved)
        }
    }

    /// `certreload reload`: the same job by hand.
    struct Reload: RunnableCommand {
        static let spec = CommandSpec(
            name: "reload",
            abstract: "Check, reload and verify targets by hand.",
            discussion: """
                Without --force, a target whose server already serves the certificate on disk (every verify URL) is reported and left alone. --dry-run checks and says what would be reloaded, without reloading.
                """,
            arguments: [targetsArgument],
            options: ConfigFileOptions.options + [
                .flag("dry-run", "Check and report; do not reload."),
                .flag("force", "Reload even when the server already serves the certificate on disk."),
            ],
            make: { parsed in
                Reload(config: ConfigFileOptions(parsed), targets: parsed.argumentList("target"), dryRun: parsed.flag("dry-run"), force: parsed.flag("force"))
            })

        var config: ConfigFileOptions
        var targets: [String]
        var dryRun: Bool
        var force: Bool

        nonisolated(nonsending) func run() async throws {
            let configuration = try ConfiguredTargets.load(config)
            let selected = try ConfiguredTargets.select(targets, from: configuration)
            let ok = await ConfiguredTargets.run(
                selected, configuration: configuration, action: .reload(force: force, dryRun: dryRun),
                logger: ConfiguredTargets.logger())
            if !ok { throw ExitCode(1) }
        }
    }

    /// `certreload verify`: probes only.
    struct Verify: RunnableCommand {
        static let spec = CommandSpec(
            name: "verify",
            abstract: "Probe each target's verify URLs: is the server serving the certificate on disk?",
            discussion: """
                Connects to every verify URL (STARTTLS for smtp, submission, imap and pop3), sends the URL's host as SNI, and compares the leaf the server presents with cert.pem (SHA-256 of the DER). Nothing is reloaded.
                """,
            arguments: [targetsArgument],
            options: ConfigFileOptions.options,
            make: { parsed in Verify(config: ConfigFileOptions(parsed), targets: parsed.argumentList("target")) })

        var config: ConfigFileOptions
        var targets: [String]

        nonisolated(nonsending) func run() async throws {
            let configuration = try ConfiguredTargets.load(config)
            let selected = try ConfiguredTargets.select(targets, from: configuration)
            let ok = await ConfiguredTargets.run(
                selected, configuration: configuration, action: .verify, logger: ConfiguredTargets.logger())
            if !ok { throw ExitCode(1) }
        }
    }
}

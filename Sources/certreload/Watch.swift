import CertReload
import CertReloadCommandLine
import Logging

extension CertReloadCommand {
    /// `certreload watch`: the long-running daemon under systemd.
    struct Watch: RunnableCommand {
        static let spec = CommandSpec(
            name: "watch",
            abstract: "Follow every configured lineage with inotify and reload its targets once a renewal has settled.",
            discussion: """
                Runs until SIGTERM or SIGINT, as a systemd Type=notify service (READY=1 after the first pass, STATUS= with a summary, WATCHDOG=1 when WatchdogSec= is set). On start, every target whose certificate on disk is not the one recorded as deployed is verified, and reloaded if its server does not serve it yet. A lineage is acted on only after it has been quiet for `settle` seconds (default 2) and all four links point at one version whose key matches the certificate; one that stays half-updated for `settle-max` (default 60) is reported once and not reloaded. Failed reloads are retried after 1 s, doubling up to 5 min. SIGHUP (systemctl reload) reads the configuration again; one that does not validate is refused and the running one kept. When inotify's limits are reached (fs.inotify.max_user_watches, max_user_instances) the message names the sysctl, its value and the fix, and the lineages left without a watch are polled every `poll-interval` seconds (default 30) instead.
                """,
            options: ConfigFileOptions.options,
            make: { parsed throws(UsageError) in Watch(config: ConfigFileOptions(parsed)) })

        var config: ConfigFileOptions

        nonisolated(nonsending) func run() async throws {
            WatchService.limitMallocArenas()
            let configuration = try ConfiguredTargets.load(config)
            var logger = Logger(label: "certreload")
            logger.logLevel = .info
            try await WatchService(configuration: configuration, logger: logger).run()
        }
    }
}

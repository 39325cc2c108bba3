/// The settle wait on its own, for `certreload deploy --lineage NAME --settle S` started by
/// the `certreload@.path` unit: the same window as `certreload watch`, fed by inotify on
/// the one lineage.
public enum LineageSettling {
    /// Waits until `lineage` has been quiet for `settle` and is consistent, or until
    /// `settleMax` has passed (then `.inconsistent` with the last look). `waiting` is told
    /// once, at the first look that finds the lineage half-updated.
    public static func wait(
        certbotDirectory: String, lineage: String, settle: Duration, settleMax: Duration,
        waiting: @escaping @Sendable (LineageSnapshot) -> Void = { _ in }
    ) async throws(SystemError) -> SettleResult {
        let (events, continuation) = AsyncStream.makeStream(of: WatchEvent.self)
        let inotify = try InotifySource(
            certbotDirectory: certbotDirectory, configPath: nil, continuation: continuation)
        inotify.watch(certbotDirectory: certbotDirectory, lineages: [lineage])
        let source = LineageSource.certbot(liveDirectory: CertbotDirectory(certbotDirectory).liveDirectory + "/" + lineage)
        let changes = Doorbell()
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in events {
                    switch event {
                    case .lineageChanged, .attributesChanged, .rescan: changes.ring()
                    default: continue
                    }
                }
            }
            var told = false
            let result = await SettleWindow(settle: settle, settleMax: settleMax).wait(
                changes: changes,
                inspect: {
                    let snapshot = await LineageSnapshot.inspected(source)
                    if !snapshot.consistent && !told {
                        told = true
                        waiting(snapshot)
                    }
                    return snapshot
                })
            inotify.cancel()
            continuation.finish()
            return result
        }
    }
}

/// journald MESSAGE_IDs, one per kind of event: `journalctl MESSAGE_ID=…` finds them. The
/// README's table lists the same values; they never change.
public enum MessageID {
    /// A server was told to reload and accepted.
    public static let reloaded = "5b2f1e8c3a7d4e6f9b0c1d2e3f4a5b6c"
    /// A reload failed (the server refused, was unreachable, or timed out).
    public static let reloadFailed = "8d4c2b1a0f9e4d3c8b7a6f5e4d3c2b1a"
    /// A target's files became unreadable (or unreachable) to its user.
    public static let becameUnreadable = "c3e1a9f75b2d4c68a0e4f1b3d5c7e9a2"
    /// A certificate expires within warn-days (or has expired).
    public static let expiring = "e7a5c3b1d9f24e6a8c0b2d4f6a8c0e1b"
    /// A target's files became readable to its user again.
    public static let readableAgain = "a4d6f8b0c2e44a6c8e0f2b4d6f8a0c2e"
    /// A lineage stayed half-updated past settle-max.
    public static let inconsistent = "f1e3d5c7b9a04f2e8d6c4b2a0f9e8d7c"
    /// A lineage's notAfter went backwards after a change.
    public static let notAfterBackwards = "b8c0d2e4f6a84b0c9d1e3f5a7b9c1d3e"
    /// inotify's limits were reached: some lineages are polled instead (or watched again).
    public static let inotifyLimit = "d2f4a6c8e0b24d6f8a1c3e5b7d9f1a3c"

    /// The event a problem stands for, if it has one of its own.
    static func forProblem(_ code: ProblemCode) -> String? {
        if ProblemCode.access.contains(code) && code != .accessLostOnRenewal { return becameUnreadable }
        if code == .expiringSoon || code == .expired { return expiring }
        return nil
    }
}

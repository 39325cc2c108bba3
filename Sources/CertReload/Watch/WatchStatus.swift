
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What `systemctl status` shows on its Status: line, kept across configuration reloads.
final class WatchStatus: Sendable {
    private struct State: Equatable {
        var lineages = 0
        var targets = 0
        var lastReload: (target: String, at: Int64)?
        var inconsistent: Set<String> = []
        var failing: Set<String> = []

        static func == (lhs: State, rhs: State) -> Bool {
            lhs.lineages == rhs.lineages && lhs.targets == rhs.targets && lhs.lastReload?.target == rhs.lastReload?.target
                && lhs.lastReload?.at == rhs.lastReload?.at && lhs.inconsistent == rhs.inconsistent
                && lhs.failing == rhs.failing
        }
    }

    private let state = Locked(State())
    private let publish: @Sendable (String) -> Void

    init(publish: @escaping @Sendable (String) -> Void) {
        self.publish = publish
    }

    func watching(lineages: Int, targets: Int) { update { $0.lineages = lineages; $0.targets = targets } }
    func lineage(_ name: String, consistent: Bool) {
        update { if consistent { $0.inconsistent.remove(name) } else { $0.inconsistent.insert(name) } }
    }
    func target(_ name: String, failing: Bool) {
        update { if failing { $0.failing.insert(name) } else { $0.failing.remove(name) } }
    }
    func reloaded(_ target: String) { update { $0.lastReload = (target, Int64(time(nil))) } }
    /// Forgets lineages and targets no longer configured.
    func keep(lineages: Set<String>, targets: Set<String>) {
        update {
            $0.inconsistent.formIntersection(lineages)
            $0.failing.formIntersection(targets)
        }
    }

    var line: String { state.withLock { WatchStatus.render($0) } }

    private func update(_ change: (inout State) -> Void) {
        let line: String? = state.withLock { state in
            let before = state
            change(&state)
            return before == state ? nil : WatchStatus.render(state)
        }
        if let line { publish(line) }
    }

    private static func render(_ state: State) -> String {
        var line = "watching \(state.lineages) lineage\(state.lineages == 1 ? "" : "s") for \(state.targets) target\(state.targets == 1 ? "" : "s")"
        if let last = state.lastReload {
            line += "; last reload: \(last.target) at \(clockTime(last.at))"
        } else {
            line += "; no reload yet"
        }
        var problems: [String] = []
        if !state.inconsistent.isEmpty { problems.append("inconsistent: \(state.inconsistent.sorted().joined(separator: ","))") }
        if !state.failing.isEmpty { problems.append("failing: \(state.failing.sorted().joined(separator: ","))") }
        line += problems.isEmpty ? "; no problems" : "; problems: " + problems.joined(separator: "; ")
        return line
    }

    /// "2026-11-29 23:31:23 UTC".
    static func clockTime(_ seconds: Int64) -> String {
        var value = time_t(seconds)
        var parts = tm()
        gmtime_r(&value, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S UTC", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one monotonic clock (CLOCK_MONOTONIC): deadlines that wall-clock changes do not move.
enum MonotonicClock {
    static func nanoseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }

    /// Seconds, for deadlines kept as `Double`.
    static func now() -> Double { Double(nanoseconds()) / 1e9 }
}

/// A point on the monotonic clock after which a blocking wait gives up.
struct Deadline {
    let end: Double

    init(seconds: Double) {
        end = MonotonicClock.now() + max(0, seconds)
    }

    var remaining: Double { end - MonotonicClock.now() }
    var hasPassed: Bool { remaining <= 0 }
}

/// The one way certreload writes a duration for people: "5 s", "0.3 s", "1.5 s" (tenths).
public enum DurationText {
    public static func seconds(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10) s" : "\(tenths / 10).\(tenths % 10) s"
    }

    public static func seconds(_ value: Duration) -> String {
        let (whole, attoseconds) = value.components
        return seconds(Double(whole) + Double(attoseconds) / 1e18)
    }
}

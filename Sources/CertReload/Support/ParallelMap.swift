import Dispatch

/// Writes to distinct indices from concurrent iterations.
///
/// `@unchecked Sendable`: each iteration of `concurrentPerform` writes only its own index,
/// and the buffer is read only after `concurrentPerform` returns.
private final class ResultSlots<T>: @unchecked Sendable {
    var values: [T?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
}

extension Array where Element: Sendable {
    /// Maps over the array on every core; order is kept. Small inputs run inline.
    func parallelMap<T: Sendable>(minimumBatch: Int = 16, _ transform: @Sendable (Element) -> T) -> [T] {
        if count < minimumBatch * 2 { return map(transform) }
        let slots = ResultSlots<T>(count: count)
        let chunks = Swift.min(count / minimumBatch, 64)
        let chunkSize = (count + chunks - 1) / chunks
        self.withUnsafeBufferPointer { input in
            nonisolated(unsafe) let input = input
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = chunk * chunkSize
                let end = Swift.min(start + chunkSize, input.count)
                guard start < end else { return }
                for index in start..<end {
                    slots.values[index] = transform(input[index])
                }
            }
        }
        return slots.values.map { $0! }
    }
}

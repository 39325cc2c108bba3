extension Sequence where Element == String {
    /// The items on one line, kept short: all of them when there are at most `shown + 2` (saying
    /// "and 2 more" saves nothing), else the first `shown`, then `more(hidden, total)`. A hosting
    /// box's target may name 10,000 lineages; a Stalwart 0.15 reload may report thousands of errors.
    public func abbreviated(separator: String, shown: Int = 8, more: (_ hidden: Int, _ total: Int) -> String) -> String {
        let items = Array(self)
        if items.count <= shown + 2 { return items.joined(separator: separator) }
        return items.prefix(shown).joined(separator: separator) + more(items.count - shown, items.count)
    }
}

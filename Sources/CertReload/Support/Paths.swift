#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Lexical path helpers; nothing here touches the file system unless it says so.
package enum Paths {
    /// Joins `name` to `directory` unless `name` is absolute.
    package static func join(_ directory: String, _ name: String) -> String {
        if name.hasPrefix("/") { return name }
        if directory.hasSuffix("/") { return directory + name }
        return directory + "/" + name
    }

    /// The directory part of a path ("/" for a file at the root).
    package static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The last component of a path.
    package static func base(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Removes `.`, empty components and `..` lexically (only valid once symlinks in the
    /// directory part have been resolved, which `resolvedDirectory` does).
    package static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// Every directory a lookup of `directory` searches, from "/" down to `directory`.
    package static func ancestors(including directory: String) -> [String] {
        var result = ["/"]
        var current = ""
        for part in directory.split(separator: "/", omittingEmptySubsequences: true) {
            current += "/" + part
            result.append(current)
        }
        return result
    }

    /// The physical path of a directory (symlinks resolved), or nil if it cannot be resolved.
    package static func realDirectory(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Makes a path absolute against the working directory and normalizes it.
    package static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return normalize("/" + path) }
        let cwd = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return normalize(join(cwd, path))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Temporary directories and their removal, without Foundation.
public enum FileTree {
    /// Creates a fresh directory under $TMPDIR (or /tmp).
    public static func makeTemporaryDirectory(prefix: String) throws(SystemError) -> String {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else { throw SystemError("mkdtemp", path: base) }
        return String(cString: result)
    }

    /// Removes a directory tree without following symlinks out of it.
    public static func remove(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            chmod(path, 0o700)
            if let dir = opendir(path) {
                var names: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                        String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(dir)
                for name in names { remove(Paths.join(path, name)) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

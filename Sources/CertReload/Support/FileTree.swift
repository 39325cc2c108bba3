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
                    let name = direntName(entry)
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

/// The name in a `readdir` entry, read in place up to its NUL. Copying `d_name` as a value
/// (`withUnsafeBytes(of: entry.pointee.d_name)`) reads all 256 bytes of the declared array,
/// past the end of the kernel's shorter record: AddressSanitizer reports a heap overflow.
public func direntName(_ entry: UnsafeMutablePointer<dirent>) -> String {
    let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
    return String(cString: UnsafeRawPointer(entry).advanced(by: offset).assumingMemoryBound(to: CChar.self))
}

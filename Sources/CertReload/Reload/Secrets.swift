#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads tokens and passwords from files or systemd credentials. Never from the command line,
/// and never into a log line.
public enum Secrets {
    /// Reads a secret, refusing a file that other users can read (or that is not a small
    /// regular file). Trailing newlines are removed.
    public static func read(_ source: SecretSource, credentialsDirectory: String? = nil) throws(ReloadError) -> String {
        let path: String
        switch source {
        case .file(let file):
            path = file
        case .credential(let name):
            guard let directory = credentialsDirectory ?? getenv("CREDENTIALS_DIRECTORY").map({ String(cString: $0) }) else {
                throw ReloadError(
                    .reloadFailed, "credential '\(name)' asked for, but $CREDENTIALS_DIRECTORY is not set",
                    fix: "add `LoadCredential=\(name):/etc/certreload/\(name)` to the unit, or use token-file")
            }
            path = Paths.join(directory, name)
        }
        try checkPermissions(path)
        switch SafeFile.read(path, limit: 64 * 1024) {
        case .success(var bytes):
            while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
            let secret = String(decoding: bytes, as: UTF8.self)
            guard !secret.isEmpty else {
                throw ReloadError(.reloadFailed, "secret file \(path) is empty", fix: "write the token into \(path)")
            }
            return secret
        case .failure(.missing):
            throw ReloadError(.reloadFailed, "secret file \(path) does not exist", fix: "create it: install -m 0600 /dev/null \(path) and write the token into it")
        case .failure(.notRegularFile(let kind)):
            throw ReloadError(.reloadFailed, "secret file \(path) is a \(kind), not a regular file")
        case .failure(.tooLarge(let size, _)):
            throw ReloadError(.reloadFailed, "secret file \(path) is \(size) bytes; a token is far smaller")
        case .failure(.failed(let call, let code)):
            throw ReloadError(.reloadFailed, "\(call) \(path): \(errnoDescription(code))",
                              fix: code == EACCES ? "run certreload as root, or make \(path) readable by its user (mode 0600 or 0640)" : nil)
        }
    }

    /// Refuses a secret file that users other than its owner and group can read, or that is
    /// not a regular file (a FIFO, a device, a directory).
    public static func checkPermissions(_ path: String) throws(ReloadError) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }  // read() reports the missing file
        if (info.st_mode & S_IFMT) != S_IFREG {
            throw ReloadError(
                .tokenFileInsecure,
                "secret file \(path) is a \(SafeFile.fileKind(info.st_mode)), not a regular file; certreload reads secrets only from regular files",
                fix: "write the secret into a regular file: install -m 0600 /dev/null \(path), then put the token in it")
        }
        if info.st_mode & 0o004 != 0 {
            throw ReloadError(
                .tokenFileInsecure,
                "secret file \(path) is readable by every user (mode \(String(Int(info.st_mode & 0o777), radix: 8))); certreload refuses to use it",
                fix: "chmod 0600 \(path)")
        }
    }
}

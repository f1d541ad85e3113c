import Foundation

/// What the files under a folder (a LEADFLOW_HOME) hold, as text a test can search: archives
/// unpacked by `tar`, a `.partial-*` one (a killed write, never finished) by `zstd -dc` as
/// far as its bytes go, every other file as written.
public enum HomeFiles {
    /// Every regular file under `folder`, dot-files included, relative to it; links are not followed.
    public static func all(under folder: URL) -> [String] {
        var files: [String] = []
        func walk(_ relative: String) {
            let url = relative.isEmpty ? folder : folder.appendingPathComponent(relative)
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted() {
                let path = relative.isEmpty ? name : relative + "/" + name
                var status = stat()
                guard lstat(folder.appendingPathComponent(path).path, &status) == 0 else { continue }
                if status.st_mode & S_IFMT == S_IFDIR { walk(path) } else if status.st_mode & S_IFMT == S_IFREG { files.append(path) }
            }
        }
        walk("")
        return files
    }

    /// The file's contents as text, unpacked when it is an archive.
    public static func text(of file: URL) async throws -> String {
        let name = file.lastPathComponent
        if name.contains(".partial-") {
            return try await runProgram("zstd", ["-dcq", file.path]).stdout
                + String(decoding: (try? Data(contentsOf: file)) ?? Data(), as: UTF8.self)
        }
        if name.hasSuffix(".tar.zst") { return try await runProgram("tar", ["--zstd", "-xOf", file.path]).stdout }
        if name.hasSuffix(".tar.gz") { return try await runProgram("tar", ["-xzOf", file.path]).stdout }
        if name.hasSuffix(".tar") { return try await runProgram("tar", ["-xOf", file.path]).stdout }
        return String(decoding: try Data(contentsOf: file), as: UTF8.self)
    }

    /// The files under `folder` that hold any of `needles` (compared lower-cased), relative to it.
    public static func holding(_ needles: [String], under folder: URL) async throws -> [String] {
        var found: [String] = []
        for path in all(under: folder) {
            let text = try await text(of: folder.appendingPathComponent(path)).lowercased()
            if needles.contains(where: { text.contains($0.lowercased()) }) { found.append(path) }
        }
        return found
    }
}

import Foundation
import LeadFlowCore
#if canImport(Glibc)
import Glibc
#endif

/// Extracts an archive into a new folder, refusing anything that could land outside it or
/// smuggle a link: absolute names, `..`, symbolic and hard links, devices; and refusing a
/// bomb: more bytes than the limits allow, or an archive that expands past the ratio limit.
///
/// The archive file is opened once and read twice through that one descriptor: the first
/// pass checks everything and writes nothing, the second writes (and checks again, should the
/// file's bytes have changed in between). Swapping the path after the check changes nothing.
/// Every folder and file is created relative to the target's descriptor, exclusively and
/// without following a link, so nothing already there (or put there meanwhile) is written
/// through. Files are 0600 and folders 0700: the members are raw personal data.
public enum ArchiveExtractor {
    public struct Limits: Sendable, Equatable {
        /// The most bytes all members together may hold.
        public var totalBytes: Int64
        /// The most bytes one member may hold (checked on its header, then as it is read).
        public var memberBytes: Int64
        /// The most the archive may expand (uncompressed bytes per compressed byte).
        public var ratio: Int64

        /// Below this many uncompressed bytes the ratio is not judged: a few pages of repetitive
        /// JSON can compress better than 200:1 and cannot fill a disk. Past it, a bomb is refused
        /// within a bounded read, long before its gigabytes.
        public static let ratioGrace: Int64 = 16 << 20

        public init(totalBytes: Int64 = 1 << 30, memberBytes: Int64 = 256 << 20, ratio: Int64 = 200) {
            self.totalBytes = totalBytes
            self.memberBytes = memberBytes
            self.ratio = ratio
        }
    }

    /// Extracts `url` into `folder`, which must be missing (it is created 0700, with any missing
    /// parents) or an empty folder; no component of its path may be a symbolic link. On any
    /// refusal or error, what was extracted is removed. Returns the member names written.
    @discardableResult
    public static func extract(_ url: URL, to folder: URL, limits: Limits = Limits()) throws -> [String] {
        let path = url.path
        // O_NOFOLLOW: the archive named, not what a link there points to.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw ArchiveError.posix("open", path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ArchiveError.posix("fstat", path: path, errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw ArchiveError(.unsupported, function: "extract", path: path, message: "not a regular file")
        }

        _ = try pass(fd: fd, path: path, limits: limits, into: nil)
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw ArchiveError.posix("lseek", path: path, errno: errno) }
        let target = try ExtractionTarget(folder)
        do {
            return try pass(fd: fd, path: path, limits: limits, into: target)
        } catch {
            target.removeWhatWasWritten()
            throw error
        }
    }

    /// One pass over the archive: every check, and the writes when there is a target.
    private static func pass(fd: Int32, path: String, limits: Limits, into target: ExtractionTarget?) throws -> [String] {
        let reader = try ArchiveReader(fileDescriptor: fd, path: path)
        var written: [String] = []
        var total: Int64 = 0
        func refuse(_ message: String) -> ArchiveError {
            ArchiveError(.tooLarge, function: "extract", path: path, message: "refused: \(message)")
        }
        func checkRatio() throws {
            let (uncompressed, compressed) = reader.bytesRead
            // Overflow means a ratio limit so large that nothing exceeds it (`--max-ratio` is the operator's).
            let (allowed, overflow) = limits.ratio.multipliedReportingOverflow(by: max(compressed, 1))
            guard uncompressed <= Limits.ratioGrace || overflow || uncompressed <= allowed else {
                throw refuse("the archive expands more than \(limits.ratio) times (\(uncompressed) bytes out of \(compressed) read): a compression bomb")
            }
        }
        while let entry = try reader.nextEntry() {
            try checkRatio()
            guard entry.kind == .file || entry.kind == .directory else {
                throw ArchiveError(.invalidMember, function: "extract", path: path,
                                   message: "refused: member \(entry.name) is a \(entry.kind == .symbolicLink || entry.kind == .hardLink ? "link" : "special file")")
            }
            let name = entry.kind == .directory && entry.name.hasSuffix("/") ? String(entry.name.dropLast()) : entry.name
            guard ArchiveMemberName.isSafe(name) else {
                throw ArchiveError(.invalidMember, function: "extract", path: path,
                                   message: "refused: member \(entry.name) would land outside the target folder")
            }
            guard entry.size <= limits.memberBytes else {
                throw refuse("member \(entry.name) holds \(entry.size) bytes, more than the limit of \(limits.memberBytes) per member")
            }
            let (sum, overflow) = total.addingReportingOverflow(entry.size)
            guard !overflow, sum <= limits.totalBytes else {
                throw refuse("the members hold more than the limit of \(limits.totalBytes) bytes")
            }
            if entry.kind == .directory {
                try target?.makeFolder(name)
                continue
            }
            let file = try target?.createFile(name)
            var unclosed = file
            defer { unclosed.map { _ = close($0) } }
            var memberBytes: Int64 = 0
            try reader.readData { chunk in
                memberBytes += Int64(chunk.count)
                total += Int64(chunk.count)
                guard memberBytes <= limits.memberBytes else {
                    throw refuse("member \(entry.name) holds more than the limit of \(limits.memberBytes) bytes per member")
                }
                guard total <= limits.totalBytes else {
                    throw refuse("the members hold more than the limit of \(limits.totalBytes) bytes")
                }
                try checkRatio()
                if let file, let target { try target.write(chunk, to: file, member: name) }
            }
            if let file, let target {
                unclosed = nil
                try target.finish(file, member: name)
            }
            written.append(entry.name)
        }
        return written
    }
}

/// The folder being extracted into, held open: every path below it is resolved from its
/// descriptor one component at a time, never through a link.
final class ExtractionTarget {
    private let folder: String
    /// Owned: closed in `deinit`.
    private let parent: Int32
    private let descriptor: Int32
    private let name: String
    private let createdHere: Bool
    /// What this extraction created, in order, relative to the target: removed in reverse on failure.
    private var created: [(path: String, isFolder: Bool)] = []

    init(_ url: URL) throws {
        folder = url.path
        let components = url.standardizedFileURL.path.split(separator: "/").map(String.init)
        guard let last = components.last, last != ".." else {
            throw ArchiveError(.targetRefused, function: "extract", path: folder, message: "refused: give a folder to create")
        }
        name = last
        parent = try Self.openFolder(components.dropLast(), shown: folder)
        do {
            if mkdirat(parent, name, 0o700) == 0 {
                createdHere = true
            } else if errno == EEXIST {
                createdHere = false
            } else {
                throw ArchiveError.posix("mkdirat", path: folder, errno: errno)
            }
            descriptor = try Self.openChild(parent, name, shown: folder)
        } catch {
            close(parent)
            throw error
        }
        if createdHere {
            _ = fchmod(descriptor, 0o700)
        } else if !Self.isEmpty(descriptor) {
            close(descriptor)
            close(parent)
            throw ArchiveError(.targetRefused, function: "extract", path: folder,
                               message: "refused: the folder is not empty (extract into a new folder)")
        }
    }

    deinit {
        close(descriptor)
        close(parent)
    }

    /// Creates the folders of `path` below the target (each 0700, kept when already made by
    /// this extraction) and returns the last one, open. The caller closes it.
    private func openFolders(_ components: [Substring]) throws -> Int32 {
        var current = dup(descriptor)
        guard current >= 0 else { throw ArchiveError.posix("dup", path: folder, errno: errno) }
        var sofar: [Substring] = []
        for component in components {
            sofar.append(component)
            let relative = sofar.joined(separator: "/")
            let made = mkdirat(current, String(component), 0o700) == 0
            guard made || errno == EEXIST else {
                let code = errno
                close(current)
                throw ArchiveError.posix("mkdirat", path: folder, errno: code, member: relative)
            }
            let next: Int32
            do { next = try Self.openChild(current, String(component), shown: "\(folder)/\(relative)") } catch {
                close(current)
                throw error
            }
            close(current)
            current = next
            if made {
                _ = fchmod(current, 0o700)
                created.append((relative, true))
            }
        }
        return current
    }

    func makeFolder(_ path: String) throws {
        close(try openFolders(path.split(separator: "/")))
    }

    /// Creates the member's file, 0600, exclusively (a name seen twice, or anything already
    /// there, is an error rather than overwritten or followed). The caller closes it.
    func createFile(_ path: String) throws -> Int32 {
        let components = path.split(separator: "/")
        let folder = try openFolders(Array(components.dropLast()))
        defer { close(folder) }
        let file = openat(folder, String(components.last ?? ""), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw ArchiveError.posix("openat", path: self.folder, errno: errno, member: path) }
        created.append((path, false))
        _ = fchmod(file, 0o600)
        return file
    }

    /// Writes all of `chunk`; a short write is continued, a failed one (a full disk) thrown.
    func write(_ chunk: UnsafeRawBufferPointer, to file: Int32, member: String) throws {
        guard let base = chunk.baseAddress else { return }
        var offset = 0
        while offset < chunk.count {
            let count = Glibc.write(file, base + offset, chunk.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw ArchiveError.posix("write", path: folder, errno: errno, member: member)
            }
            offset += count
        }
    }

    /// Closes a member's file: some file systems (NFS, quotas) report a full disk only here.
    func finish(_ file: Int32, member: String) throws {
        guard close(file) == 0 else { throw ArchiveError.posix("close", path: folder, errno: errno, member: member) }
    }

    /// Removes what this extraction created, relative to the target's descriptor, newest
    /// first; then the target itself when this extraction made it.
    func removeWhatWasWritten() {
        for (path, isFolder) in created.reversed() {
            _ = unlinkat(descriptor, path, isFolder ? AT_REMOVEDIR : 0)
        }
        created = []
        if createdHere { _ = unlinkat(parent, name, AT_REMOVEDIR) }
    }

    /// Opens a folder path one component at a time with O_NOFOLLOW, creating missing ones
    /// (0700): a symbolic link anywhere in the path is refused, not followed.
    private static func openFolder(_ components: ArraySlice<String>, shown: String) throws -> Int32 {
        // A file URL's path is absolute: resolved from the root.
        var current = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard current >= 0 else { throw ArchiveError.posix("open", path: shown, errno: errno) }
        for component in components {
            if mkdirat(current, component, 0o700) != 0 && errno != EEXIST {
                let code = errno
                close(current)
                throw ArchiveError.posix("mkdirat", path: shown, errno: code)
            }
            let next: Int32
            do { next = try openChild(current, component, shown: shown) } catch {
                close(current)
                throw error
            }
            close(current)
            current = next
        }
        return current
    }

    /// Opens a folder below `parent` without following a link.
    private static func openChild(_ parent: Int32, _ name: String, shown: String) throws -> Int32 {
        let child = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard child >= 0 else {
            if errno == ELOOP || errno == ENOTDIR {
                throw ArchiveError(.targetRefused, function: "extract", path: shown,
                                   message: "refused: \(name) is a symbolic link or not a folder (links are never followed)")
            }
            throw ArchiveError.posix("openat", path: shown, errno: errno)
        }
        return child
    }

    private static func isEmpty(_ folder: Int32) -> Bool {
        // fdopendir takes the descriptor it is given: hand it a copy.
        guard let listing = fdopendir(dup(folder)) else { return false }
        defer { closedir(listing) }
        while let entry = readdir(listing) {
            // d_name is a fixed-size C array holding a NUL-terminated name.
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { return false }
        }
        return true
    }
}

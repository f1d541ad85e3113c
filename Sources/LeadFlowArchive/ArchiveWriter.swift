import CLibArchive
import Foundation
import LeadFlowCore

/// How an archive's tar stream is compressed.
public enum ArchiveCompression: String, Sendable, CaseIterable {
    case zstd, gzip, none

    /// The file-name suffix that tells `tar` and people what the file is.
    public var fileExtension: String {
        switch self {
        case .zstd: return "tar.zst"
        case .gzip: return "tar.gz"
        case .none: return "tar"
        }
    }
}

/// Writes a tar archive (pax, UTF-8 names) entry by entry, streaming: nothing but the
/// current chunk is held in memory.
///
/// The archive is built under a temporary name beside its final one, and only `publish()`
/// makes it appear: close, fsync the file, rename it into place, fsync the folder. A writer
/// dropped before `publish()` removes its temporary file, so no partial archive ever
/// carries a final name.
public final class ArchiveWriter {
    public let finalURL: URL
    public let temporaryURL: URL
    /// Owned: freed by `archive_write_free` in `publish()` or `deinit`.
    private var archive: OpaquePointer?
    /// Owned: the temporary file's descriptor, closed after the final fsync.
    private var descriptor: Int32
    private var published = false

    /// - SeeAlso: https://github.com/libarchive/libarchive/wiki/ManPageArchiveWrite3
    public init(publishingTo finalURL: URL, compression: ArchiveCompression = .zstd) throws {
        self.finalURL = finalURL
        utf8Locale
        let folder = finalURL.deletingLastPathComponent()
        temporaryURL = folder.appendingPathComponent(".\(finalURL.lastPathComponent).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        // Raw personal data: only LeadFlow's user may read it, whatever the umask.
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        descriptor = open(temporaryURL.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw ArchiveError.posix("open", path: temporaryURL.path, errno: errno) }
        guard let archive = archive_write_new() else {
            close(descriptor)
            unlink(temporaryURL.path)
            throw ArchiveError(.io, function: "archive_write_new", path: finalURL.path, message: "out of memory")
        }
        self.archive = archive
        do {
            try check(archive_write_set_format_pax_restricted(archive), "archive_write_set_format_pax_restricted")
            switch compression {
            case .zstd: try check(archive_write_add_filter_zstd(archive), "archive_write_add_filter_zstd")
            case .gzip: try check(archive_write_add_filter_gzip(archive), "archive_write_add_filter_gzip")
            case .none: break
            }
            // The descriptor stays ours: libarchive writes to it but does not close it.
            try check(archive_write_open_fd(archive, descriptor), "archive_write_open_fd")
        } catch {
            discard()
            throw error
        }
    }

    deinit {
        if !published { discard() }
    }

    /// Adds a regular file whose bytes are in memory.
    /// - SeeAlso: https://github.com/libarchive/libarchive/wiki/ManPageArchiveWriteData3
    public func addFile(named name: String, contents: some DataProtocol, modified: Date = Date()) throws {
        try writeHeader(name: name, size: Int64(contents.count), modified: modified)
        for region in contents.regions {
            try region.withUnsafeBytes { try writeData($0) }
        }
        try check(archive_write_finish_entry(archive), "archive_write_finish_entry")
    }

    /// Adds a regular file from disk, copied in 64 KiB chunks (spooled Graph pages can be large).
    public func addFile(named name: String, contentsOf source: URL, modified: Date? = nil) throws {
        let input = open(source.path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw ArchiveError.posix("open", path: source.path, errno: errno) }
        defer { close(input) }
        var status = stat()
        guard fstat(input, &status) == 0 else { throw ArchiveError.posix("fstat", path: source.path, errno: errno) }
        let mtime = modified ?? Date(timeIntervalSince1970: TimeInterval(status.st_mtim.tv_sec))
        try writeHeader(name: name, size: Int64(status.st_size), modified: mtime)
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var remaining = Int64(status.st_size)
        while remaining > 0 {
            let count = chunk.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            guard count > 0 else {
                // The file shrank under us: the header already promised its old size.
                throw count < 0 ? ArchiveError.posix("read", path: source.path, errno: errno)
                    : ArchiveError(.io, function: "read", path: source.path, message: "file shrank while archiving")
            }
            try chunk.withUnsafeBytes { try writeData(UnsafeRawBufferPointer(rebasing: $0[0..<min(count, Int(remaining))])) }
            remaining -= Int64(count)
        }
        try check(archive_write_finish_entry(archive), "archive_write_finish_entry")
    }

    /// Finishes the archive and makes it appear under its final name, durably.
    /// - SeeAlso: https://github.com/libarchive/libarchive/wiki/ManPageArchiveWrite3 (archive_write_close)
    public func publish() throws {
        try check(archive_write_close(archive), "archive_write_close")
        archive_write_free(archive)
        archive = nil
        guard fsync(descriptor) == 0 else {
            let code = errno
            discard()
            throw ArchiveError.posix("fsync", path: temporaryURL.path, errno: code)
        }
        close(descriptor)
        descriptor = -1
        guard rename(temporaryURL.path, finalURL.path) == 0 else {
            let code = errno
            discard()
            throw ArchiveError.posix("rename", path: finalURL.path, errno: code)
        }
        published = true
        // The rename is durable only once the folder's entry is on disk.
        let folder = finalURL.deletingLastPathComponent().path
        let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard folderDescriptor >= 0 else { throw ArchiveError.posix("open", path: folder, errno: errno) }
        defer { close(folderDescriptor) }
        guard fsync(folderDescriptor) == 0 else { throw ArchiveError.posix("fsync", path: folder, errno: errno) }
    }

    private func writeHeader(name: String, size: Int64, modified: Date) throws {
        guard ArchiveMemberName.isSafe(name) else {
            throw ArchiveError(.invalidMember, function: "archive_write_header", path: finalURL.path,
                               message: "member name must be relative, without '..' or empty parts")
        }
        guard let entry = archive_entry_new() else {
            throw ArchiveError(.io, function: "archive_entry_new", path: finalURL.path, message: "out of memory")
        }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname_utf8(entry, name)
        archive_entry_set_size(entry, size)
        archive_entry_set_filetype(entry, clibarchive_ifreg)
        archive_entry_set_perm(entry, 0o600)
        archive_entry_set_mtime(entry, time_t(modified.timeIntervalSince1970.rounded(.down)), 0)
        try check(archive_write_header(archive, entry), "archive_write_header")
    }

    private func writeData(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        let written = archive_write_data(archive, bytes.baseAddress, bytes.count)
        guard written == bytes.count else {
            throw ArchiveError(.io, function: "archive_write_data", path: finalURL.path, archive: archive)
        }
    }

    private func check(_ status: Int32, _ function: String) throws {
        guard status == ARCHIVE_OK else {
            throw ArchiveError(.io, function: function, path: finalURL.path, archive: archive)
        }
    }

    /// Frees the handle and removes the temporary file; used on every failure path.
    private func discard() {
        if let archive { archive_write_free(archive) }
        archive = nil
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unlink(temporaryURL.path)
    }
}

/// The rule for member names, shared by the writer and by safe extraction.
public enum ArchiveMemberName {
    /// Relative, non-empty, no `..` part, no empty part, no NUL.
    public static func isSafe(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains("\0") else { return false }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        return !parts.contains { $0.isEmpty || $0 == ".." || $0 == "." }
    }
}

import CLibArchive
import Foundation
import LeadFlowCore

/// One member of an archive as its header describes it.
public struct ArchiveEntry: Equatable, Sendable {
    public enum Kind: Sendable { case file, directory, symbolicLink, hardLink, other }

    public let name: String
    public let kind: Kind
    public let size: Int64
    /// For links: what the link points to.
    public let linkTarget: String?
}

/// Reads an archive entry by entry (any compression libarchive knows), streaming each
/// member's bytes in chunks. A damaged or truncated archive is an error, never a shorter
/// archive: reading must reach the end-of-archive marker to succeed.
public final class ArchiveReader {
    public let url: URL
    /// Owned: freed by `archive_read_free` in `deinit`.
    private let archive: OpaquePointer

    /// - SeeAlso: https://github.com/libarchive/libarchive/wiki/ManPageArchiveRead3
    public init(url: URL) throws {
        self.url = url
        archive = try Self.newTarReader(path: url.path)
        let status = archive_read_open_filename(archive, url.path, 64 << 10)
        guard status == ARCHIVE_OK else {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw ArchiveError(exists ? .corrupt : .io, function: "archive_read_open_filename", path: url.path, archive: archive)
        }
    }

    /// Reads from a file the caller opened and keeps open (libarchive does not close it), from
    /// the descriptor's current offset: `archive extract` reads one open file twice, so what it
    /// verified is what it extracts even if the path is swapped in between.
    /// - SeeAlso: https://github.com/libarchive/libarchive/wiki/ManPageArchiveReadOpen3
    public init(fileDescriptor: Int32, path: String) throws {
        self.url = URL(fileURLWithPath: path)
        archive = try Self.newTarReader(path: path)
        guard archive_read_open_fd(archive, fileDescriptor, 64 << 10) == ARCHIVE_OK else {
            throw ArchiveError(.corrupt, function: "archive_read_open_fd", path: path, archive: archive)
        }
    }

    /// A read handle for tar with any compression; the caller opens it and owns it.
    private static func newTarReader(path: String) throws -> OpaquePointer {
        utf8Locale
        guard let archive = archive_read_new() else {
            throw ArchiveError(.io, function: "archive_read_new", path: path, message: "out of memory")
        }
        archive_read_support_filter_all(archive)
        archive_read_support_format_tar(archive)
        return archive
    }

    deinit {
        archive_read_free(archive)
    }

    /// The next member's header, or nil at the end of the archive.
    /// - SeeAlso: https://github.com/libarchive/libarchive/wiki/ManPageArchiveReadHeader3
    public func nextEntry() throws -> ArchiveEntry? {
        // The entry is owned by the archive handle and valid until the next call.
        var entry: OpaquePointer?
        let status = archive_read_next_header(archive, &entry)
        if status == ARCHIVE_EOF { return nil }
        // ARCHIVE_WARN included: a header libarchive had to guess at is not trusted.
        guard status == ARCHIVE_OK, let entry else {
            throw ArchiveError(.corrupt, function: "archive_read_next_header", path: url.path, archive: archive)
        }
        let name = archive_entry_pathname_utf8(entry).map { String(cString: $0) }
            ?? archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        let kind: ArchiveEntry.Kind
        var linkTarget: String?
        if let hardlink = archive_entry_hardlink(entry) {
            kind = .hardLink
            linkTarget = String(cString: hardlink)
        } else {
            switch UInt32(archive_entry_filetype(entry)) {
            case clibarchive_ifreg: kind = .file
            case clibarchive_ifdir: kind = .directory
            case clibarchive_iflnk:
                kind = .symbolicLink
                linkTarget = archive_entry_symlink(entry).map { String(cString: $0) }
            default: kind = .other
            }
        }
        return ArchiveEntry(name: name, kind: kind, size: archive_entry_size(entry), linkTarget: linkTarget)
    }

    /// Streams the current member's bytes to `body` in chunks.
    /// - SeeAlso: https://github.com/libarchive/libarchive/wiki/ManPageArchiveReadData3
    public func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
            if count == 0 { return }
            guard count > 0 else {
                throw ArchiveError(.corrupt, function: "archive_read_data", path: url.path, archive: archive)
            }
            try chunk.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
    }

    /// Bytes so far: out of the decompressor (tar headers included) and read from the file.
    /// Their ratio is how much the archive expands, known while reading, before it is all read.
    /// - SeeAlso: https://github.com/libarchive/libarchive/wiki/ManPageArchiveUtil3
    public var bytesRead: (uncompressed: Int64, compressed: Int64) {
        // Filter 0 is the one nearest the reader (the tar stream), -1 the one nearest the file.
        (archive_filter_bytes(archive, 0), archive_filter_bytes(archive, -1))
    }

    /// The current member's bytes, whole (for small members such as the manifest).
    public func readData() throws -> Data {
        var data = Data()
        try readData { data.append(contentsOf: $0) }
        return data
    }

    /// Every member's header. Reads the whole archive, so it fails on a damaged one.
    public static func list(_ url: URL) throws -> [ArchiveEntry] {
        let reader = try ArchiveReader(url: url)
        var entries: [ArchiveEntry] = []
        while let entry = try reader.nextEntry() {
            entries.append(entry)
            // Reading the data is what detects a truncated member or a broken stream.
            try reader.readData { _ in }
        }
        return entries
    }
}

import CLibArchive
import Foundation
import LeadFlowCore

/// A libarchive or file-system failure, naming the C function and the archive's path.
public struct ArchiveError: LeadFlowError, Equatable {
    public enum Kind: String, Sendable {
        /// The archive cannot be read to its end: truncated, bad checksum, bad compression.
        case corrupt
        case io
        /// A member the writer refuses (empty or absolute name, `..`).
        case invalidMember = "invalid_member"
        case unsupported
        /// `extract` refused an archive past its size or compression-ratio limit (a bomb).
        case tooLarge = "too_large"
        /// `extract` refused its target folder: not empty, or a link on the way to it.
        case targetRefused = "target_refused"
    }

    public let kind: Kind
    public let function: String
    public let path: String
    public let message: String

    public var code: String { "archive.\(kind.rawValue)" }
    public var disposition: Disposition { kind == .io ? .retry : .fatal }
    public var description: String { "\(code): \(function) failed for \(path): \(message)" }

    init(_ kind: Kind, function: String, path: String, message: String) {
        self.kind = kind
        self.function = function
        self.path = path
        self.message = message
    }

    /// An error from an archive handle, with libarchive's own message.
    init(_ kind: Kind, function: String, path: String, archive: OpaquePointer?) {
        let message = archive.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "unknown error"
        self.init(kind, function: function, path: path, message: message)
    }

    /// An error from a POSIX call, with strerror's text. `member`: the archive member being
    /// written when it happened, so a full disk says what was cut short.
    static func posix(_ function: String, path: String, errno code: Int32, member: String? = nil) -> ArchiveError {
        if let member, code == ENOSPC || code == EDQUOT {
            return ArchiveError(.io, function: function, path: path,
                                message: "the disk is full while writing \(member): nothing more was extracted")
        }
        let text = String(cString: strerror(code))
        return ArchiveError(.io, function: function, path: path, message: member.map { "\(text) while writing \($0)" } ?? text)
    }
}

/// libarchive converts member names through the C locale's character set, and in the
/// default "C" locale a non-ASCII name cannot be converted (Graph form names and custom
/// questions often are). Switch LC_CTYPE to UTF-8 once, before the first archive is opened.
let utf8Locale: Void = {
    let current = setlocale(LC_CTYPE, nil).map { String(cString: $0) } ?? "C"
    if !current.uppercased().contains("UTF-8") && !current.uppercased().contains("UTF8") {
        _ = setlocale(LC_CTYPE, "C.UTF-8")
    }
}()

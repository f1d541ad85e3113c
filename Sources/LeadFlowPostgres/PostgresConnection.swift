import CLibPQ
import Foundation
import LeadFlowCore
import Logging

/// SQL that is sent as it is written, without bound parameters (DDL, several statements
/// at once). Its label makes every such statement visible in code review and in errors.
public struct RawSQL: Sendable {
    public let label: String
    public let text: String

    public init(label: String, _ text: String) {
        self.label = label
        self.text = text
    }
}

/// One libpq connection. Calls block the calling thread until the server answers, so
/// callers keep them off Swift's cooperative pool. Not safe to share between threads.
public final class PostgresConnection {
    /// Owned: freed by `PQfinish` in `deinit`, never handed out.
    let handle: OpaquePointer
    private let logger: Logger
    /// Boxed so the notice processor's C context pointer stays valid as long as `handle`.
    private let noticeSink: NoticeSink
    /// What it connected with (another session on the same database: `PostgresSession`).
    public let conninfo: String

    /// Connects with a libpq conninfo string (`host=… dbname=…`) or URI (`postgresql://…`),
    /// then fixes the session's time zone and date style so timestamps parse one way.
    /// - SeeAlso: https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PQCONNECTDB
    public init(conninfo: String, logger: Logger = Logger(label: "leadflow.postgres")) throws {
        guard let handle = PQconnectdb(conninfo) else {
            throw PostgresError(kind: .connect, function: "PQconnectdb", label: nil, sqlState: nil,
                                serverMessage: "out of memory")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle))
            PQfinish(handle)
            throw PostgresError(kind: .connect, function: "PQconnectdb", label: nil, sqlState: nil, serverMessage: message)
        }
        self.handle = handle
        self.conninfo = conninfo
        self.logger = logger
        self.noticeSink = NoticeSink(logger: logger)
        // The sink is retained by `self` for as long as the connection exists.
        PQsetNoticeProcessor(handle, { context, message in
            guard let context, let message else { return }
            Unmanaged<NoticeSink>.fromOpaque(context).takeUnretainedValue().receive(String(cString: message))
        }, Unmanaged.passUnretained(noticeSink).toOpaque())
        try execute(raw: RawSQL(label: "session settings",
                                "SET TIME ZONE 'UTC'; SET datestyle = 'ISO, YMD'; SET client_encoding = 'UTF8'"))
        OpenSessions.shared.add(PQbackendPID(handle))
    }

    deinit {
        OpenSessions.shared.remove(PQbackendPID(handle))
        PQfinish(handle)
    }

    /// The server's process id for this session (to cancel or terminate it from elsewhere).
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// Runs one statement with its parameters bound (never spliced into the SQL).
    /// - SeeAlso: https://www.postgresql.org/docs/current/libpq-exec.html#LIBPQ-PQEXECPARAMS
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = [], label: String? = nil) throws -> PostgresRows {
        let texts = parameters.map(\.postgresText)
        let result = withCStrings(texts) { pointers in
            PQexecParams(handle, sql, Int32(pointers.count), nil, pointers, nil, nil, 0)
        }
        return try checkResult(result, function: "PQexecParams", label: label ?? Self.firstWords(of: sql))
    }

    /// Runs labelled raw SQL, possibly several statements; returns the last result.
    /// - SeeAlso: https://www.postgresql.org/docs/current/libpq-exec.html#LIBPQ-PQEXEC
    @discardableResult
    public func execute(raw sql: RawSQL) throws -> PostgresRows {
        try checkResult(PQexec(handle, sql.text), function: "PQexec", label: sql.label)
    }

    /// Runs `body` inside BEGIN … COMMIT; any error rolls back and is rethrown.
    /// A COMMIT that fails (the connection dropped, say) is an error, never a silent success.
    @discardableResult
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try execute(raw: RawSQL(label: "begin", "BEGIN"))
        let value: T
        do {
            value = try body(self)
        } catch {
            rollbackQuietly()
            throw error
        }
        do {
            try execute(raw: RawSQL(label: "commit", "COMMIT"))
        } catch {
            rollbackQuietly()
            throw error
        }
        return value
    }

    /// Streams rows into `COPY … FROM STDIN` (text format) as `produce` writes them, in
    /// chunks, never holding the whole set in memory. If `produce` throws, the COPY is
    /// aborted with `PQputCopyEnd(…, message)`, so the server keeps none of its rows, and
    /// the producer's error is rethrown. Returns the number of rows the server stored.
    /// - SeeAlso: https://www.postgresql.org/docs/current/libpq-copy.html
    @discardableResult
    public func copyIn(_ copyStatement: String, label: String,
                       chunkSize: Int = 256 << 10,
                       _ produce: (inout PostgresCopyWriter) throws -> Void) throws -> Int {
        _ = try checkResult(PQexec(handle, copyStatement), function: "PQexec", label: label, expecting: PGRES_COPY_IN)
        var writer = PostgresCopyWriter(connection: self, label: label, chunkSize: chunkSize)
        do {
            try produce(&writer)
            try writer.flush()
        } catch {
            let reason = "LeadFlow aborted the COPY (\(label))"
            _ = PQputCopyEnd(handle, reason)
            drainResults()
            if PQstatus(handle) != CONNECTION_OK, !(error is PostgresError) {
                throw lostConnection(function: "PQputCopyEnd", label: label)
            }
            throw error
        }
        guard PQputCopyEnd(handle, nil) == 1 else {
            throw failure(function: "PQputCopyEnd", label: label, result: nil)
        }
        // The COPY's outcome arrives as one result; libpq then returns NULL.
        let rows = try checkResult(PQgetResult(handle), function: "PQgetResult", label: label)
        drainResults()
        return rows.affectedRows
    }

    func putCopyData(_ bytes: UnsafeRawBufferPointer, label: String) throws {
        guard bytes.count > 0 else { return }
        let sent = PQputCopyData(handle, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        guard sent == 1 else { throw failure(function: "PQputCopyData", label: label, result: nil) }
    }

    // MARK: - Results and errors

    private func checkResult(_ result: OpaquePointer?, function: String, label: String?,
                             expecting expected: ExecStatusType? = nil) throws -> PostgresRows {
        guard let result else { throw failure(function: function, label: label, result: nil) }
        let status = PQresultStatus(result)
        if let expected {
            guard status == expected else { throw failure(function: function, label: label, result: result) }
            PQclear(result)
            return PostgresRows(empty: ())
        }
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(result: result, label: label)
        default:
            throw failure(function: function, label: label, result: result)
        }
    }

    /// Builds the error for a failed call, and clears `result`.
    private func failure(function: String, label: String?, result: OpaquePointer?) -> PostgresError {
        defer { if let result { PQclear(result) } }
        let sqlState = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
        let message = result.map { String(cString: PQresultErrorMessage($0)) } ?? ""
        let text = message.isEmpty ? String(cString: PQerrorMessage(handle)) : message
        if PQstatus(handle) != CONNECTION_OK {
            return PostgresError(kind: .connectionLost, function: function, label: label, sqlState: sqlState, serverMessage: text)
        }
        let kind: PostgresError.Kind = function.hasPrefix("PQputCopy") ? .copy : .query
        return PostgresError(kind: kind, function: function, label: label, sqlState: sqlState, serverMessage: text)
    }

    private func lostConnection(function: String, label: String?) -> PostgresError {
        PostgresError(kind: .connectionLost, function: function, label: label, sqlState: nil,
                      serverMessage: String(cString: PQerrorMessage(handle)))
    }

    private func drainResults() {
        while let result = PQgetResult(handle) { PQclear(result) }
    }

    private func rollbackQuietly() {
        guard PQstatus(handle) == CONNECTION_OK else { return }
        drainResults()
        if let result = PQexec(handle, "ROLLBACK") { PQclear(result) }
    }

    /// A default label for errors: the statement's first words (never its values, which are bound).
    private static func firstWords(of sql: String) -> String {
        sql.split(whereSeparator: { $0 == " " || $0 == "\n" }).prefix(3).joined(separator: " ")
    }
}

/// Routes server notices (`NOTICE: … skipping`) to the logger at debug level.
final class NoticeSink {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
    func receive(_ message: String) {
        logger.debug("postgres notice", metadata: ["postgres.notice": "\(message.trimmingCharacters(in: .whitespacesAndNewlines))"])
    }
}

/// Calls `body` with NUL-terminated C strings for `texts` (nil stays NULL); the pointers
/// are valid only during the call.
private func withCStrings<R>(_ texts: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let owned = texts.map { $0.map { strdup($0)! } }
    defer { owned.forEach { free($0) } }
    return body(owned.map { $0.map { UnsafePointer($0) } })
}

/// The server processes of this process's own open sessions, so the embedded cluster can
/// tell its own clients (ending with the command) from another process's.
final class OpenSessions: @unchecked Sendable {
    static let shared = OpenSessions()
    private let lock = NSLock()
    private var backends: [Int32: Int] = [:]

    func add(_ pid: Int32) { lock.withLock { backends[pid, default: 0] += 1 } }
    func remove(_ pid: Int32) {
        lock.withLock {
            backends[pid, default: 1] -= 1
            if backends[pid] == 0 { backends[pid] = nil }
        }
    }
    var pids: [Int32] { lock.withLock { Array(backends.keys) } }
}

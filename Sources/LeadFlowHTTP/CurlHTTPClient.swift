import CCurl
import Foundation
import LeadFlowCore
import Logging

/// `curl_global_init` must run once per process, before any other curl call, and is not
/// thread-safe: a Swift global is initialised exactly once, under a lock.
let curlGlobalInitResult: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

/// HTTP over libcurl's multi interface: many transfers in flight at once on one
/// dedicated thread, with connections kept alive and reused between requests.
///
/// The blocking curl calls (`curl_multi_poll`, `curl_multi_perform`) run on that thread,
/// never on Swift's cooperative pool; `send` only queues a transfer and suspends.
/// Verbose mode is never switched on: it would print tokens.
public final class CurlHTTPClient: HTTPTransport {
    public struct Configuration: Sendable {
        /// Transfers running at once; further requests wait their turn in order.
        public var maxConcurrentTransfers: Int
        /// Idle connections kept for reuse.
        public var maxCachedConnections: Int
        /// A body larger than this fails the transfer (a Graph page is a few MB at most).
        public var maxResponseBytes: Int
        /// The bodies of all transfers together, arriving or handed over and not yet dealt
        /// with (`HTTPResponse.bodyLease`): past it, every transfer but the oldest pauses
        /// until bytes are released. So 16 transfers of 50 MB pages hold about one page
        /// plus this, not 16 pages; the oldest always goes on, so nothing waits for ever.
        public var maxBufferedBytes: Int
        public var userAgent: String

        public init(maxConcurrentTransfers: Int = 8, maxCachedConnections: Int = 16,
                    maxResponseBytes: Int = 64 << 20, maxBufferedBytes: Int = 8 << 20, userAgent: String = "LeadFlow/1") {
            self.maxConcurrentTransfers = maxConcurrentTransfers
            self.maxCachedConnections = maxCachedConnections
            self.maxResponseBytes = maxResponseBytes
            self.maxBufferedBytes = maxBufferedBytes
            self.userAgent = userAgent
        }
    }

    private let loop: MultiLoop

    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "leadflow.http")) throws {
        try check(curlGlobalInitResult, "curl_global_init")
        loop = try MultiLoop(configuration: configuration, logger: logger)
    }

    deinit {
        loop.stop()
    }

    /// - SeeAlso: https://curl.se/libcurl/c/curl_multi_add_handle.html
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Task.checkCancellation()
        let transfer = Transfer(request: request)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.continuation = continuation
                loop.enqueue(transfer)
            }
        } onCancel: {
            loop.cancel(transfer)
        }
    }
}

/// One request on its way: its easy handle, the response as it arrives, and the
/// continuation to resume exactly once.
final class Transfer: @unchecked Sendable {
    // Set before the transfer is queued, then read and written only on the loop thread.
    let request: HTTPRequest
    var continuation: CheckedContinuation<HTTPResponse, any Error>?
    var easy: UnsafeMutableRawPointer?
    var headerList: UnsafeMutablePointer<curl_slist>?
    var status = 0
    var headers: [(name: String, value: String)] = []
    var body = Data()
    var maxResponseBytes = 0
    var overflowed = false
    /// Its place in the order transfers started: the oldest is never paused.
    var sequence: UInt64 = 0
    var budget: BufferBudget?
    /// Bytes of the body counted against the budget.
    var held = 0
    var paused = false
    /// Content-Length of an unencoded body, to size the buffer once.
    var expectedLength: Int?
    /// curl writes its human-readable error here; it must outlive the easy handle's use.
    var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    var requestBody: Data?
    // Guarded by MultiLoop.lock: set from any thread by cancellation.
    var cancelRequested = false

    init(request: HTTPRequest) {
        self.request = request
        self.requestBody = request.body
    }

    func finish(_ result: Result<HTTPResponse, any Error>) {
        continuation?.resume(with: result)
        continuation = nil
    }
}

/// The thread that drives `curl_multi_*`, and the queue that feeds it.
final class MultiLoop: @unchecked Sendable {
    private let multi: UnsafeMutableRawPointer
    private let configuration: CurlHTTPClient.Configuration
    private let logger: Logger
    private let lock = NSLock()
    // Guarded by `lock`.
    private var waiting: [Transfer] = []
    private var stopping = false
    private var cancellations = false
    // Only touched on the loop thread.
    private var active: [UnsafeMutableRawPointer: Transfer] = [:]
    private var nextSequence: UInt64 = 0
    private let finished = DispatchSemaphore(value: 0)
    let budget: BufferBudget

    init(configuration: CurlHTTPClient.Configuration, logger: Logger) throws {
        guard let multi = curl_multi_init() else {
            throw CurlError(kind: .initialisation, function: "curl_multi_init", message: "returned NULL", url: nil)
        }
        self.multi = multi
        self.configuration = configuration
        self.logger = logger
        // curl_multi_wakeup is the one multi call safe from any thread.
        let handle = UnsafeSendable(multi)
        budget = BufferBudget(limit: configuration.maxBufferedBytes, wake: { curl_multi_wakeup(handle.value) })
        try check(ccurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maxCachedConnections),
                  "curl_multi_setopt(CURLMOPT_MAXCONNECTS)")
        let thread = Thread { [self] in run() }
        thread.name = "leadflow.curl"
        thread.start()
    }

    func enqueue(_ transfer: Transfer) {
        lock.withLock { waiting.append(transfer) }
        curl_multi_wakeup(multi)
    }

    func cancel(_ transfer: Transfer) {
        lock.withLock {
            transfer.cancelRequested = true
            cancellations = true
        }
        curl_multi_wakeup(multi)
    }

    /// Fails what is still queued or running, then waits for the thread to free the handles.
    func stop() {
        lock.withLock { stopping = true }
        curl_multi_wakeup(multi)
        finished.wait()
    }

    private func run() {
        while true {
            let (newTransfers, stop, cancelled) = lock.withLock { () -> ([Transfer], Bool, [Transfer]) in
                var cancelled: [Transfer] = []
                if cancellations {
                    cancellations = false
                    cancelled = active.values.filter(\.cancelRequested) + waiting.filter(\.cancelRequested)
                    waiting.removeAll(where: \.cancelRequested)
                }
                let room = max(0, configuration.maxConcurrentTransfers - active.count)
                let taken = Array(waiting.prefix(room))
                waiting.removeFirst(taken.count)
                return (taken, stopping, cancelled)
            }
            for transfer in cancelled {
                remove(transfer)
                transfer.finish(.failure(CancellationError()))
            }
            if stop {
                shutDown(with: newTransfers)
                return
            }
            for transfer in newTransfers { start(transfer) }

            var running: Int32 = 0
            let performed = curl_multi_perform(multi, &running)
            if performed != CURLM_OK {
                logger.error("curl_multi_perform failed", metadata: ["curl.code": "\(performed.rawValue)"])
            }
            collectFinished()
            resumePaused()
            // Finished transfers may have made room for queued ones: start them now rather
            // than after the poll, which nothing might wake for a while.
            let canStartMore = lock.withLock { !waiting.isEmpty && active.count < configuration.maxConcurrentTransfers }
            if canStartMore { continue }
            // Sleeps until a socket is ready, curl's own timeout, or curl_multi_wakeup.
            _ = curl_multi_poll(multi, nil, 0, 1000, nil)
        }
    }

    /// Paused transfers go on when bytes were released or one became the oldest; curl
    /// hands them the data it kept back. (Calls the write callback, which may pause them again.)
    private func resumePaused() {
        for transfer in active.values.sorted(by: { $0.sequence < $1.sequence }) where transfer.paused {
            guard budget.mayResume(transfer.sequence), let easy = transfer.easy else { continue }
            transfer.paused = false
            _ = curl_easy_pause(easy, 0) // CURLPAUSE_CONT
        }
    }

    private func start(_ transfer: Transfer) {
        do {
            try configure(transfer)
            nextSequence += 1
            transfer.sequence = nextSequence
            transfer.budget = budget
            budget.started(transfer.sequence)
            try check(curl_multi_add_handle(multi, transfer.easy), "curl_multi_add_handle")
            active[transfer.easy!] = transfer
        } catch {
            release(transfer)
            transfer.finish(.failure(error))
        }
    }

    /// - SeeAlso: https://curl.se/libcurl/c/curl_easy_setopt.html
    private func configure(_ transfer: Transfer) throws {
        guard let easy = curl_easy_init() else {
            throw CurlError(kind: .initialisation, function: "curl_easy_init", message: "returned NULL", url: nil)
        }
        transfer.easy = easy
        transfer.maxResponseBytes = configuration.maxResponseBytes
        let request = transfer.request
        let url = request.fullURL
        func set(_ option: CURLoption, _ value: Int, _ name: String) throws {
            try check(ccurl_easy_setopt_long(easy, option, value), "curl_easy_setopt(\(name))", url: url)
        }
        func set(_ option: CURLoption, _ value: String, _ name: String) throws {
            // curl copies string options (since 7.17), so the Swift string may go after the call.
            try check(ccurl_easy_setopt_string(easy, option, value), "curl_easy_setopt(\(name))", url: url)
        }
        try set(CURLOPT_URL, url, "CURLOPT_URL")
        // Only plain HTTP(S), and no redirects: LeadFlow never talks to a host it was not given.
        try set(CURLOPT_PROTOCOLS_STR, "http,https", "CURLOPT_PROTOCOLS_STR")
        try set(CURLOPT_FOLLOWLOCATION, 0, "CURLOPT_FOLLOWLOCATION")
        try set(CURLOPT_NOSIGNAL, 1, "CURLOPT_NOSIGNAL")
        try set(CURLOPT_VERBOSE, 0, "CURLOPT_VERBOSE")
        try set(CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(request.connectTimeout), "CURLOPT_CONNECTTIMEOUT_MS")
        try set(CURLOPT_TIMEOUT_MS, Self.milliseconds(request.timeout), "CURLOPT_TIMEOUT_MS")
        // An empty string means every encoding this libcurl can decode (gzip, deflate, …).
        try set(CURLOPT_ACCEPT_ENCODING, "", "CURLOPT_ACCEPT_ENCODING")
        try set(CURLOPT_USERAGENT, configuration.userAgent, "CURLOPT_USERAGENT")
        try transfer.errorBuffer.withUnsafeMutableBufferPointer { buffer in
            // The buffer lives in the Transfer, which outlives the easy handle.
            try check(ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, buffer.baseAddress), "curl_easy_setopt(CURLOPT_ERRORBUFFER)")
        }

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        // The Transfer stays in `active` until the handle is removed, so `context` stays valid.
        try check(ccurl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION, writeCallback), "curl_easy_setopt(CURLOPT_WRITEFUNCTION)")
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context), "curl_easy_setopt(CURLOPT_WRITEDATA)")
        try check(ccurl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION, headerCallback), "curl_easy_setopt(CURLOPT_HEADERFUNCTION)")
        try check(ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context), "curl_easy_setopt(CURLOPT_HEADERDATA)")

        for header in request.headers {
            // A CR or LF would end the header and start another (a value from a pipeline
            // file or Graph could smuggle one); a NUL would cut it short. Refused, never sent.
            guard HTTPHeaderRule.isSafe(name: header.name, value: header.value) else {
                throw CurlError(kind: .setup, function: "curl_slist_append",
                                message: "refused: the header \(HTTPHeaderRule.printableName(header.name)) holds a line break, a NUL or another control character",
                                url: url)
            }
            transfer.headerList = curl_slist_append(transfer.headerList, "\(header.name): \(header.value)")
        }
        if let list = transfer.headerList {
            try check(ccurl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list), "curl_easy_setopt(CURLOPT_HTTPHEADER)")
        }
        if request.method == .put {
            // A PUT with its body given like a POST's: curl sends the body under the custom verb.
            try set(CURLOPT_CUSTOMREQUEST, "PUT", "CURLOPT_CUSTOMREQUEST")
        }
        if request.method != .get {
            let body = transfer.requestBody ?? Data()
            try set(CURLOPT_POSTFIELDSIZE, body.count, "CURLOPT_POSTFIELDSIZE")
            // COPYPOSTFIELDS copies the bytes, so no Swift buffer has to outlive the call.
            try body.withUnsafeBytes { raw in
                try check(ccurl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)),
                          "curl_easy_setopt(CURLOPT_COPYPOSTFIELDS)")
            }
        }
    }

    /// - SeeAlso: https://curl.se/libcurl/c/curl_multi_info_read.html
    private func collectFinished() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                  let transfer = active[easy] else { continue }
            let code = message.pointee.data.result
            defer { remove(transfer) }
            if code == CURLE_OK {
                // The status as curl parsed it; the header callback's guess is only a fallback.
                var status = 0
                if ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK, status > 0 {
                    transfer.status = status
                }
                // The body's bytes stay counted until the caller lets go of the response.
                let lease = budget.lease(transfer.held)
                transfer.held = 0
                // The caller gets the only reference to the body, so it may change it in place.
                let body = transfer.body
                transfer.body = Data()
                transfer.finish(.success(HTTPResponse(status: transfer.status, headers: transfer.headers, body: body,
                                                      bodyLease: lease)))
            } else {
                let detail = transfer.errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                let kind: CurlError.Kind? = transfer.overflowed ? .responseTooLarge : nil
                transfer.finish(.failure(CurlError(kind: kind, function: "curl_multi_perform", code: code,
                                                   detail: detail, url: transfer.request.fullURL)))
            }
        }
    }

    private func remove(_ transfer: Transfer) {
        if let easy = transfer.easy, active.removeValue(forKey: easy) != nil {
            curl_multi_remove_handle(multi, easy)
        }
        release(transfer)
    }

    private func release(_ transfer: Transfer) {
        if transfer.sequence != 0 { budget.ended(transfer.sequence, releasing: transfer.held) }
        transfer.held = 0
        transfer.sequence = 0
        if let easy = transfer.easy { curl_easy_cleanup(easy) }
        transfer.easy = nil
        if let list = transfer.headerList { curl_slist_free_all(list) }
        transfer.headerList = nil
    }

    private func shutDown(with unstarted: [Transfer]) {
        let queued = lock.withLock { () -> [Transfer] in
            defer { waiting.removeAll() }
            return waiting
        }
        for transfer in Array(active.values) + unstarted + queued {
            remove(transfer)
            transfer.finish(.failure(CancellationError()))
        }
        budget.stop() // no lease released later wakes a handle about to be freed
        curl_multi_cleanup(multi)
        finished.signal()
    }

    /// At least one: curl reads 0 as "no timeout".
    private static func milliseconds(_ duration: Duration) -> Int {
        max(1, duration.milliseconds)
    }
}

/// CURLOPT_WRITEFUNCTION: append the bytes, or stop the transfer past the size bound.
private let writeCallback: ccurl_data_callback = { data, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    guard transfer.body.count + length <= transfer.maxResponseBytes else {
        transfer.overflowed = true
        return 0
    }
    if let budget = transfer.budget, !budget.admit(length, for: transfer.sequence) {
        transfer.paused = true
        return 0x1000_0001 // CURL_WRITEFUNC_PAUSE: curl keeps the bytes and offers them again
    }
    transfer.held += length
    if transfer.body.isEmpty, let expected = transfer.expectedLength, expected <= transfer.maxResponseBytes {
        transfer.body.reserveCapacity(expected)
    }
    if let data { transfer.body.append(UnsafeRawPointer(data).assumingMemoryBound(to: UInt8.self), count: length) }
    return length
}

/// CURLOPT_HEADERFUNCTION: one header line per call, status line first.
private let headerCallback: ccurl_data_callback = { data, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    guard let data else { return length }
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
        // A new status line (after a 100 Continue, say) starts a new header block.
        transfer.headers.removeAll()
        let parts = line.split(separator: " ", maxSplits: 2)
        transfer.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
    } else if let colon = line.firstIndex(of: ":") {
        let name = String(line[..<colon])
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        transfer.headers.append((name, value))
        if name.caseInsensitiveCompare("Content-Length") == .orderedSame, let length = Int(value), length >= 0 {
            transfer.expectedLength = length
        } else if name.caseInsensitiveCompare("Content-Encoding") == .orderedSame {
            transfer.expectedLength = nil // the decoded body has another size
        }
    }
    return length
}

/// The bytes of response bodies the client holds, all transfers together, against
/// `Configuration.maxBufferedBytes`. Counted as they arrive (on the loop thread), released
/// when a transfer fails or when the caller drops the response's `bodyLease` (any thread).
final class BufferBudget: @unchecked Sendable {
    private let lock = NSLock()
    private let limit: Int
    private let wake: @Sendable () -> Void
    // Guarded by `lock`.
    private var held = 0
    private var downloading: Set<UInt64> = []
    /// Finished bodies not yet let go of.
    private var leases = 0
    private var stopped = false

    init(limit: Int, wake: @escaping @Sendable () -> Void) {
        self.limit = limit
        self.wake = wake
    }

    func started(_ sequence: UInt64) { lock.withLock { _ = downloading.insert(sequence) } }

    /// May `length` more bytes of transfer `sequence` come in? Within the limit, yes. Past
    /// it, only the oldest transfer still downloading, and only while no finished body is
    /// held: so at most one body larger than the limit is alive at a time, and since a
    /// holder lets go without waiting for any transfer, something always progresses.
    func admit(_ length: Int, for sequence: UInt64) -> Bool {
        lock.withLock {
            guard held + length <= limit || mayExceed(sequence) else { return false }
            held += length
            return true
        }
    }

    func mayResume(_ sequence: UInt64) -> Bool {
        lock.withLock { held < limit || mayExceed(sequence) }
    }

    private func mayExceed(_ sequence: UInt64) -> Bool { leases == 0 && sequence == downloading.min() }

    /// The transfer stopped downloading; what it held and handed over in no lease is freed.
    func ended(_ sequence: UInt64, releasing bytes: Int) {
        lock.withLock {
            downloading.remove(sequence)
            held -= bytes
        }
    }

    /// The finished body's bytes, counted until the returned lease is released.
    func lease(_ bytes: Int) -> BodyLease {
        lock.withLock { leases += 1 }
        return BodyLease(budget: self, bytes: bytes)
    }

    func release(_ bytes: Int) {
        lock.withLock {
            held -= bytes
            leases -= 1
            // Under the lock: `stop` cannot free the multi handle between the check and the call.
            if !stopped { wake() }
        }
    }

    func stop() { lock.withLock { stopped = true } }
}

/// A finished body's share of the budget, released when the last copy of the response goes.
final class BodyLease: Sendable {
    let budget: BufferBudget
    let bytes: Int
    init(budget: BufferBudget, bytes: Int) {
        self.budget = budget
        self.bytes = bytes
    }
    deinit { budget.release(bytes) }
}

/// A value a closure may carry across threads because the C library allows its use there.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

import Foundation
import LeadFlowCore
import LeadFlowGraph
import Logging

/// Where extracted pages go as they arrive (the raw spool and the transform, in a run).
public protocol LeadPageSink: Sendable {
    func receive(_ page: LeadPage) async throws
}

/// How reading one connection ended.
public enum ExtractOutcome: Sendable {
    /// Every form's window was read to its end.
    case completed(forms: [GraphForm], summaries: [String: LeadStreamSummary])
    /// The token or a permission is gone: stop the connection. Forms finished before
    /// the failure are in `summaries`; no request was started after it.
    case void(cause: VoidCause, detail: String?, error: GraphError, forms: [GraphForm], summaries: [String: LeadStreamSummary])
    /// Some forms failed for other reasons (retries exhausted, a cursor loop); the others completed.
    case partial(forms: [GraphForm], summaries: [String: LeadStreamSummary], failures: [String: FormFailure])
}

/// Why a form's window could not be read: the error's stable code and its safe description.
public struct FormFailure: Sendable, Equatable {
    public let code: String
    public let description: String
}

/// Reads every form of one Page, several forms at once (bounded), handing pages to a sink.
public struct ConnectionExtractor: Sendable {
    let client: GraphClient
    let concurrency: Int
    let logger: Logger

    public init(client: GraphClient, concurrency: Int, logger: Logger = Logger(label: "leadflow.extract")) {
        self.client = client
        self.concurrency = max(1, concurrency)
        self.logger = logger
    }

    /// Lists the Page's forms, then reads them all.
    /// - Parameter window: the window to read for each form (from its watermark).
    public func extract(pageID: String, token: AccessToken, window: @Sendable (GraphForm) -> LeadWindow,
                        sink: any LeadPageSink) async throws -> ExtractOutcome {
        let forms: [GraphForm]
        do {
            forms = try await client.forms(pageID: pageID, token: token)
        } catch let error as GraphError where error.voidCause != nil {
            return .void(cause: error.voidCause!, detail: error.causeDetail, error: error, forms: [], summaries: [:])
        }
        return try await extract(forms: forms, token: token, window: window, sink: sink)
    }

    /// Reads the given forms' windows, several at once.
    /// - Parameters:
    ///   - firstPages: forms whose first page a batch already read (its body).
    ///   - tally: where each form's Graph requests and errors are counted (nil: not per form).
    public func extract(forms: [GraphForm], token: AccessToken, window: @Sendable (GraphForm) -> LeadWindow,
                        sink: any LeadPageSink, firstPages: [String: Data] = [:],
                        tally: @Sendable (String) -> GraphTally? = { _ in nil }) async throws -> ExtractOutcome {
        var summaries: [String: LeadStreamSummary] = [:]
        var failures: [String: FormFailure] = [:]
        var voidError: GraphError?

        try await withThrowingTaskGroup(of: (String, Result<LeadStreamSummary, any Error>).self) { group in
            var pending = forms[...]
            func startNext() {
                guard let form = pending.popFirst() else { return }
                let formWindow = window(form)
                let formTally = tally(form.id) ?? GraphTally()
                group.addTask {
                    do {
                        let summary = try await formTally.recording {
                            try await client.leads(formID: form.id, window: formWindow, token: token, first: firstPages[form.id]) { page in
                                try await sink.receive(page)
                            }
                        }
                        return (form.id, .success(summary))
                    } catch {
                        return (form.id, .failure(error))
                    }
                }
            }
            for _ in 0..<concurrency { startNext() }
            while let (formID, result) = try await group.next() {
                switch result {
                case .success(let summary):
                    summaries[formID] = summary
                case .failure(let error as GraphError) where error.voidCause != nil:
                    // No new request for this connection: cancel the forms in flight too.
                    voidError = voidError ?? error
                    pending = []
                    group.cancelAll()
                case .failure where voidError != nil:
                    break // cancelled because the connection went void
                case .failure(let error):
                    let known = error as? any LeadFlowError
                    failures[formID] = FormFailure(code: known?.code ?? "internal", description: known?.description ?? "\(error)")
                    logger.warning("form failed", metadata: ["form.id": "\(formID)", "error": "\(failures[formID]!.description)"])
                }
                if voidError == nil { startNext() }
            }
        }
        if let voidError {
            return .void(cause: voidError.voidCause!, detail: voidError.causeDetail, error: voidError, forms: forms, summaries: summaries)
        }
        return failures.isEmpty ? .completed(forms: forms, summaries: summaries)
            : .partial(forms: forms, summaries: summaries, failures: failures)
    }
}

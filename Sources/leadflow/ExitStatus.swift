import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowPipelineFile
import LeadFlowPostgres
import LeadFlowStages
import LeadFlowStore

/// The exit codes schedulers act on (docs/commands.md, "Exit codes").
enum ExitStatus {
    static let success = ExitCode(0)
    /// Finished, but a connection is void or leads were rejected.
    static let finishedWithGaps = ExitCode(2)
    /// Bad input or configuration (EX_USAGE).
    static let badInput = ExitCode(64)
    static let failure = ExitCode(1)

    /// Prints the error's safe description to stderr and returns the exit code it means.
    static func report(_ error: any Error) -> ExitCode {
        let message = (error as? any LeadFlowError)?.description ?? "\(error)"
        Output.problem("leadflow: \(URLRedaction.redact(message))")
        switch error {
        case let vault as VaultError where vault.kind == .keyRetired:
            return failure // a rotation ran meanwhile: running again works
        case is ConfigurationError, is ConnectRefusal, is VaultError, is PipelineFileError, is RunStage.UnknownConnection, is ValidationError,
             is AppNotConfigured, is MissingKey, is ErasureKeyMismatch:
            return badInput
        case let cluster as EmbeddedClusterError where cluster.isConfiguration:
            return badInput
        default: return failure
        }
    }
}

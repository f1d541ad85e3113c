import ArgumentParser
import Foundation
import LeadFlowCore
import LeadFlowStages

extension LeadFlow {
    struct Notify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deliver the notification outbox: the webhook and the e-mails that are due.",
            discussion: """
                Every fact LeadFlow records that people must hear of is one event in the outbox, written with the fact: reminder.due (day 75), reminder.expired, connection.created, connection.reauthenticated, connection.void (with the cause and what to do) and connection.recovered (a backfill done, with the leads it recovered). This command gives new events their channels and sends what is due; `leadflow run` does the same at its end.

                The webhook (LEADFLOW_WEBHOOK_URL, or the pipeline's notifications.webhook.url) gets every event as JSON, signed with X-LeadFlow-Signature: sha256=<HMAC-SHA256 of the body> under LEADFLOW_WEBHOOK_SECRET (or LEADFLOW_WEBHOOK_SECRET_FILE). Mail goes over SMTP (LEADFLOW_SMTP_URL: smtp:// or smtps://, LEADFLOW_SMTP_USER, LEADFLOW_SMTP_PASSWORD or LEADFLOW_SMTP_PASSWORD_FILE, LEADFLOW_NOTIFY_FROM): reminders and voids to the Connector Authenticator (connect --notify-email), connection events to the instance's CSM (the pipeline's notifications.instances.NAME.csm_email).

                A delivery that fails is tried again (three times in a pass, with backoff; then at the next pass, waiting longer each time) with the same event id until the receiver accepts it. `leadflow notifications` lists where each event stands.

                Exit codes: 0 nothing left failing; 1 a delivery failed (it stays pending); 64 bad configuration.

                Examples:
                  LEADFLOW_WEBHOOK_URL=https://hooks.example.com/leadflow LEADFLOW_WEBHOOK_SECRET_FILE=/run/secrets/hook leadflow notify
                  leadflow notify --log-level info
                """
        )

        @OptionGroup var common: CommonOptions
        @OptionGroup var pipelineOption: PipelineOption

        func run() async throws {
            common.bootstrapLogging()
            let report: Notifier.Report
            do {
                let wiring = try await Wiring(pipeline: try pipelineOption.load())
                report = try await wiring.notifier().deliverPending(now: wiring.now)
            } catch {
                throw ExitStatus.report(error)
            }
            Output.say(Self.describe(report), level: report.failures.isEmpty ? .notice : .warning)
            if !report.failures.isEmpty { throw ExitStatus.failure }
        }

        /// One line of totals, then one per failing delivery (its reason holds no secret).
        static func describe(_ report: Notifier.Report) -> String {
            var lines = ["notifications: \(report.delivered) delivered, \(report.failures.count) failing"]
            for failure in report.failures {
                lines.append("  \(failure.type.rawValue) of \(failure.label) to \(failure.channel.rawValue): \(failure.error)")
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }
}

/// The end of `run` and `backfill`: deliver what is due, and never fail the command for
/// it (a receiver that is down, or notifications misconfigured, is said and left for the
/// next pass; the leads come first).
func deliverNotifications(_ wiring: Wiring) async {
    do {
        let report = try await wiring.notifier().deliverPending(now: wiring.now)
        if report.delivered > 0 || !report.failures.isEmpty {
            Output.say(LeadFlow.Notify.describe(report), level: report.failures.isEmpty ? .notice : .warning)
        }
    } catch {
        let message = (error as? any LeadFlowError)?.description ?? "\(type(of: error))"
        Output.say("leadflow: notifications not delivered: \(URLRedaction.redact(message)) (they wait for the next run or leadflow notify)", level: .warning)
    }
}

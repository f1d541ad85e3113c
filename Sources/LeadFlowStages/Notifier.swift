import Foundation
import LeadFlowCore
import Logging

/// Delivers the notification outbox at least once: gives new events their channels, then
/// sends each due delivery (the webhook, a mail to the Connector Authenticator or the CSM),
/// retrying within the pass with backoff, and records every attempt. A receiver that is
/// down never fails the caller: its deliveries stay pending with the reason, and the next
/// pass (`leadflow notify`, the end of every `run`) tries again, with the same event id.
public struct Notifier {
    let repository: any NotificationRepository
    let settings: NotificationSettings
    let webhook: (any HTTPTransport)?
    let mail: (any MailTransport)?
    let sealer: any TokenSealer
    let sleeper: any Sleeper
    let policy: Policy
    let logger: Logger

    /// How hard one pass tries.
    public struct Policy: Sendable {
        /// Attempts of one delivery within a pass (a refused one is tried again at once, after a wait).
        public var attemptsPerPass = 3 {
            didSet { attemptsPerPass = max(1, attemptsPerPass) }
        }
        /// The wait before the second attempt of a pass; doubled before each next one.
        public var firstBackoff: Duration = .seconds(1)
        /// Between passes, the wait after n failed attempts is 2^(n-1) minutes, at most this.
        public var maxPassBackoff: Duration = .seconds(3600)
        public var webhookConnectTimeout: Duration = .seconds(5)
        public var webhookTimeout: Duration = .seconds(15)
        /// A delivery's claim, on the database's clock: another notifier may take it after.
        public var lease: Duration = .seconds(300)

        public init() {}
    }

    public init(repository: any NotificationRepository, settings: NotificationSettings, webhook: (any HTTPTransport)?,
                mail: (any MailTransport)?, sealer: any TokenSealer, sleeper: any Sleeper = TaskSleeper(), policy: Policy = Policy(),
                logger: Logger = Logger(label: "leadflow.notify")) {
        self.repository = repository
        self.settings = settings
        self.webhook = settings.webhook == nil ? nil : webhook
        self.mail = settings.mailFrom == nil ? nil : mail
        self.sealer = sealer
        self.sleeper = sleeper
        self.policy = policy
        self.logger = logger
    }

    /// What one pass did.
    public struct Report: Sendable, Equatable {
        public struct Failure: Sendable, Equatable {
            public let eventID: String
            public let type: NotificationType
            public let label: String
            public let channel: NotificationChannel
            /// Safe to show: no secret, no address.
            public let error: String
        }
        /// Events given their channels in this pass (some with none: nothing configured for them).
        public var routed = 0
        public var delivered = 0
        public var failures: [Failure] = []
    }

    /// Routes the new events, then delivers what is due at `now`.
    public func deliverPending(now: Date) async throws -> Report {
        var report = Report()
        report.routed = try await route(now: now)
        // A receiver found unreachable is not asked again in this pass: each of its
        // deliveries would wait out the connect timeout in turn.
        var down: [Transport: (reason: String, until: Date)] = [:]
        while true {
            let due = try await repository.claimDue(now: now, limit: 100, lease: policy.lease)
            if due.isEmpty { break }
            for delivery in due {
                let transport = Transport(delivery.channel)
                if let (reason, until) = down[transport] {
                    // Tried again with the delivery that found the receiver down.
                    try await repository.postpone(notificationID: delivery.notification.id, channel: delivery.channel,
                                            error: "\(reason) (not tried again in this pass)", until: until)
                    report.failures.append(.init(eventID: delivery.notification.eventID, type: delivery.notification.type,
                                                 label: delivery.notification.label, channel: delivery.channel, error: reason))
                    continue
                }
                let outcome = await deliver(delivery)
                if outcome.delivered {
                    try await repository.recordAttempts(notificationID: delivery.notification.id, channel: delivery.channel,
                                                  attempts: outcome.attempts, at: now, delivered: true, lastError: outcome.error,
                                                  nextAttemptAt: now)
                    report.delivered += 1
                    log(delivery, "delivered", error: nil)
                } else {
                    let error = outcome.error ?? "not attempted"
                    let next = nextPass(now, afterAttempts: delivery.attempts + outcome.attempts)
                    try await repository.recordAttempts(notificationID: delivery.notification.id, channel: delivery.channel,
                                                  attempts: outcome.attempts, at: now, delivered: false, lastError: error, nextAttemptAt: next)
                    report.failures.append(.init(eventID: delivery.notification.eventID, type: delivery.notification.type,
                                                 label: delivery.notification.label, channel: delivery.channel, error: error))
                    if outcome.unreachable { down[transport] = (error, next) }
                    log(delivery, "failing", error: error)
                }
            }
        }
        return report
    }

    /// Each new event gets the channels the configuration reaches for it, once.
    func route(now: Date) async throws -> Int {
        var routed = 0
        while true {
            let events = try await repository.unrouted(limit: 500)
            if events.isEmpty { return routed }
            let routes = events.map { event in
                let reach = NotificationRouting.Reach(webhook: webhook != nil, mail: mail != nil,
                                                      authenticatorAddress: event.sealedAddress != nil,
                                                      csmAddress: settings.csmEmail[event.instance] != nil)
                return (notificationID: event.id, channels: NotificationRouting.channels(for: event.type, fields: event.fields, reach: reach))
            }
            try await repository.route(routes, now: now)
            routed += events.count
        }
    }

    /// The webhook and the two mail channels fail together per server.
    enum Transport: Hashable {
        case webhook, smtp

        init(_ channel: NotificationChannel) {
            self = channel == .webhook ? .webhook : .smtp
        }
    }

    struct Outcome {
        var attempts = 0
        var delivered = false
        /// The last error met, kept when a later attempt got through.
        var error: String?
        /// The server could not be reached at all (connection refused, timeout, no such host).
        var unreachable = false
    }

    /// Up to `attemptsPerPass` attempts, waiting `firstBackoff`, then twice as long, between them.
    func deliver(_ delivery: PendingDelivery) async -> Outcome {
        var outcome = Outcome()
        var wait = policy.firstBackoff
        while outcome.attempts < policy.attemptsPerPass {
            if outcome.attempts > 0 {
                do { try await sleeper.sleep(for: wait) } catch { break }
                wait = wait * 2
            }
            outcome.attempts += 1
            do {
                try await attempt(delivery)
                outcome.delivered = true
                return outcome
            } catch let failure as DeliveryFailure {
                outcome.error = failure.reason
                outcome.unreachable = failure.unreachable
                if !failure.worthRetrying { break }
            } catch {
                outcome.error = safe((error as? any LeadFlowError)?.description ?? "\(type(of: error))")
            }
        }
        return outcome
    }

    /// Why one attempt failed, in words safe to store and show.
    struct DeliveryFailure: Error {
        let reason: String
        var unreachable = false
        /// Trying again within the pass could help (a 5xx, a refused message), unlike a
        /// missing address or a receiver that is not there.
        var worthRetrying = true
    }

    func attempt(_ delivery: PendingDelivery) async throws {
        let event = delivery.notification
        switch delivery.channel {
        case .webhook:
            guard let webhook, let configured = settings.webhook else {
                throw DeliveryFailure(reason: "no webhook is configured (LEADFLOW_WEBHOOK_URL)", worthRetrying: false)
            }
            let body = NotificationRenderer.webhookBody(event)
            let request = HTTPRequest(method: .post, url: configured.url, headers: [
                ("Content-Type", "application/json"),
                ("X-LeadFlow-Event", event.type.rawValue),
                ("X-LeadFlow-Signature", NotificationRenderer.signature(of: body, secret: configured.secret)),
            ], body: body, connectTimeout: policy.webhookConnectTimeout, timeout: policy.webhookTimeout)
            let response: HTTPResponse
            do {
                response = try await webhook.send(request)
            } catch let error as any LeadFlowError {
                throw DeliveryFailure(reason: safe("\(error.code): \(Self.message(of: error)) [\(URLRedaction.origin(configured.url))]"),
                                      unreachable: Self.unreachable(error), worthRetrying: !Self.unreachable(error))
            }
            guard (200..<300).contains(response.status) else {
                throw DeliveryFailure(reason: "HTTP \(response.status) from \(URLRedaction.origin(configured.url))")
            }
        case .authenticatorMail, .csmMail:
            guard let mail, let from = settings.mailFrom else {
                throw DeliveryFailure(reason: "no SMTP server is configured (LEADFLOW_SMTP_URL, LEADFLOW_NOTIFY_FROM)", worthRetrying: false)
            }
            let to: EmailAddress
            if delivery.channel == .csmMail {
                guard let address = settings.csmEmail[event.instance] else {
                    throw DeliveryFailure(reason: "no csm_email for instance \(event.instance) in the pipeline file", worthRetrying: false)
                }
                to = address
            } else {
                guard let sealed = event.sealedAddress, let address = try sealer.open(sealed) else {
                    throw DeliveryFailure(reason: "no address for the Connector Authenticator (connect --notify-email)", worthRetrying: false)
                }
                to = address
            }
            do {
                try await mail.send(NotificationRenderer.mail(event, channel: delivery.channel, from: from, to: to))
            } catch let error as any LeadFlowError {
                throw DeliveryFailure(reason: safe("\(error.code): \(Self.message(of: error))"), unreachable: Self.unreachable(error),
                                      worthRetrying: !Self.unreachable(error))
            }
        }
    }

    /// An adapter error's words: its description, whose URL part the adapter already cut
    /// down (CurlError names the C function and the redacted URL).
    static func message(of error: any LeadFlowError) -> String {
        let text = error.description
        return text.hasPrefix(error.code + ": ") ? String(text.dropFirst(error.code.count + 2)) : text
    }

    /// Connection refused, timed out, no such host: the transport layer's `connect_failed`
    /// and `timeout` (`CurlError`), whatever adapter says it.
    static func unreachable(_ error: any LeadFlowError) -> Bool {
        error.code.hasSuffix(".connect_failed") || error.code.hasSuffix(".timeout")
    }

    /// No secret and no address in what is stored: the webhook's URL beyond its origin, its
    /// signing secret, token parameters and e-mail addresses are cut out.
    func safe(_ text: String) -> String {
        var cleaned = text
        if let webhook = settings.webhook {
            cleaned = cleaned.replacingOccurrences(of: webhook.url, with: URLRedaction.origin(webhook.url))
            if !webhook.secret.isEmpty { cleaned = cleaned.replacingOccurrences(of: webhook.secret, with: "<secret>") }
        }
        return AddressRedaction.redact(URLRedaction.redact(cleaned))
    }

    /// 2^(n-1) minutes after n failed attempts, at most `maxPassBackoff`.
    func nextPass(_ now: Date, afterAttempts attempts: Int) -> Date {
        let minutes = Double(1 << min(max(attempts, 1) - 1, 20))
        return now.addingTimeInterval(min(minutes * 60, policy.maxPassBackoff.timeInterval))
    }

    private func log(_ delivery: PendingDelivery, _ state: String, error: String?) {
        var metadata: Logger.Metadata = ["notification.id": "\(delivery.notification.eventID)",
                                         "notification.type": "\(delivery.notification.type.rawValue)",
                                         "notification.channel": "\(delivery.channel.rawValue)",
                                         "connection.id": "\(delivery.notification.connectionID)",
                                         "notification.state": "\(state)"]
        if let error { metadata["notification.error"] = "\(error)" }
        logger.info("notification", metadata: metadata)
    }
}

import Crypto
import Foundation
import LeadFlowCore

/// What an event says, to a system (the webhook's JSON) and to a person (a plain-text mail
/// read in five seconds: what happened, what to do, by when, the Page's name). Neither
/// holds a token or a lead: events carry only instants, causes, counts and remedies.
public enum NotificationRenderer {
    /// `{"id","type","occurred_at","instance","page_id","connection","page_name"?, …fields}`,
    /// keys sorted, so the same event always has the same bytes (and signature).
    public static func webhookBody(_ event: StoredNotification) -> Data {
        var object = event.fields
        let envelope: [String: NotificationValue] = [
            "id": .text(event.eventID), "type": .text(event.type.rawValue), "occurred_at": .text(UTCTime.iso8601(event.occurredAt)),
            "instance": .text(event.instance), "page_id": .text(event.pageID), "connection": .text(event.label),
        ]
        object.merge(envelope) { _, envelope in envelope }
        if let name = event.pageName { object["page_name"] = .text(name) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Text, numbers and flags always encode.
        return (try? encoder.encode(object)) ?? Data("{}".utf8)
    }

    /// `sha256=<hex HMAC-SHA256 of the body>`: receivers recompute it with the shared secret.
    public static func signature(of body: Data, secret: String) -> String {
        "sha256=" + Hex.lowercase(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8))))
    }

    /// The mail for one recipient.
    public static func mail(_ event: StoredNotification, channel: NotificationChannel, from: EmailAddress, to: EmailAddress) -> MailMessage {
        let (subject, paragraphs) = text(event, channel: channel)
        let greeting = channel == .authenticatorMail ? event.authenticatorName.map { "Hello \($0)," } ?? "Hello," : "Hello,"
        let footer = "-- \nLeadFlow: connection \(event.label), instance \(event.instance), Page \(event.pageID)\nEvent \(event.eventID)"
        let body = ([greeting] + paragraphs.map { wrap($0) } + [footer]).joined(separator: "\n\n") + "\n"
        return MailMessage(from: from, to: to, subject: subject, body: body,
                           messageID: "\(event.eventID).\(channel.rawValue.replacingOccurrences(of: ":", with: "-"))@leadflow",
                           date: event.occurredAt)
    }

    /// The subject and the paragraphs: what happened, what to do, by when.
    static func text(_ event: StoredNotification, channel: NotificationChannel) -> (String, [String]) {
        let page = "\"\(event.pageTitle)\""
        let facebookPage = "the Facebook Page \(page) (Integrate instance \(event.instance))"
        let when = { (key: String) in event.date(key).map(UTCTime.readable) ?? "an unknown date" }
        let day = { (key: String) in event.date(key).map(readableDay) ?? "soon" }
        let who = event.authenticatorName.map { "\($0) (Facebook user \(event.authenticatorUserID))" }
            ?? "Facebook user \(event.authenticatorUserID)"
        let forCSM = channel == .csmMail
        switch event.type {
        case .reminderDue:
            return ("Reauthenticate the Facebook Page \(page) by \(day("expires_at"))", [
                "What happened: LeadFlow's authentication of \(facebookPage) ends on \(when("expires_at")) (Facebook allows 90 days).",
                "What to do: \(PreflightRules.remedy(for: .tokenExpired))."
                    + (forCSM ? " LeadFlow has no e-mail address for the Connector Authenticator, \(who): please pass this on." : ""),
                "By when: \(when("expires_at")). After that, no new lead from this Page reaches Integrate until the Page is reauthenticated.",
            ])
        case .reminderExpired:
            return ("Facebook Page \(page) stopped sending leads: reauthenticate now", [
                "What happened: the authentication of \(facebookPage) ended on \(when("expired_at")); no new lead reaches Integrate.",
                "What to do: \(event.text("remedy") ?? PreflightRules.remedy(for: .tokenExpired))."
                    + (forCSM ? " LeadFlow has no e-mail address for the Connector Authenticator, \(who): please pass this on." : ""),
                "By when: now. Leads created since then wait in Facebook and are loaded after the reauthentication.",
            ])
        case .connectionVoid:
            let cause = event.text("cause").flatMap(VoidCause.init(rawValue:))
            return ("Facebook Page \(page) stopped sending leads: \(cause.map(causeWords) ?? "access was lost")", [
                "What happened: since \(when("since")), LeadFlow cannot read leads of \(facebookPage): "
                    + "\(cause.map(causeWords) ?? "access was lost") (\(event.text("detail") ?? "no detail")).",
                "What to do: \(event.text("remedy") ?? "reauthenticate the Page")."
                    + (forCSM ? " The Connector Authenticator is \(who)." : ""),
                "By when: as soon as possible. Leads created since \(when("since")) wait in Facebook and are loaded after the reauthentication; the longer the wait, the more of them Facebook may expire.",
            ])
        case .connectionCreated:
            return ("Facebook Page \(page) connected to \(event.instance)", [
                "What happened: \(who) connected \(facebookPage) on \(when("authenticated_at")).",
                "What to do: nothing now. LeadFlow reminds the Connector Authenticator on \(when("reminder_at")).",
                "By when: the authentication lasts until \(when("expires_at")).",
            ])
        case .connectionReauthenticated:
            var happened = "What happened: \(who) reauthenticated \(facebookPage) on \(when("authenticated_at"))."
            if event.fields["authenticator_changed"] == .flag(true) { happened += " The Connector Authenticator changed." }
            if let cause = event.text("void_cause").flatMap(VoidCause.init(rawValue:)) {
                happened += " This ends the gap open since \(when("void_started_at")) (\(causeWords(cause))); the next run loads the leads it missed."
            }
            return ("Facebook Page \(page) reauthenticated for \(event.instance)", [
                happened,
                "What to do: nothing now. LeadFlow reminds the Connector Authenticator on \(when("reminder_at")).",
                "By when: the new authentication lasts until \(when("expires_at")).",
            ])
        case .connectionRecovered:
            let count = event.number("recovered") ?? 0
            return ("Facebook Page \(page): \(count) lead\(count == 1 ? "" : "s") recovered after the gap", [
                "What happened: the gap of \(facebookPage) from \(when("started_at")) to \(when("ended_at")) has been backfilled: "
                    + "\(count) lead\(count == 1 ? "" : "s") created during it \(count == 1 ? "is" : "are") now in Integrate.",
                "What to do: nothing. `leadflow gaps` shows any lead Facebook expired before the backfill (lost for good).",
                "By when: no deadline.",
            ])
        }
    }

    static func causeWords(_ cause: VoidCause) -> String {
        switch cause {
        case .tokenExpired: return "the authentication expired"
        case .dataAccessExpired: return "Facebook's data access expired"
        case .tokenInvalidated: return "the Facebook session ended"
        case .permissionRevoked: return "a permission was revoked"
        case .leadAccessLost: return "lead access was lost"
        }
    }

    /// `31 May 2026`, for subjects.
    static func readableDay(_ date: Date) -> String {
        let text = UTCTime.readable(date)               // "Sun 31 May 2026, 08:00 UTC"
        return String(text.dropFirst(4).prefix { $0 != "," })
    }

    /// Wraps a paragraph at `width` columns on spaces (a word longer than that stays whole).
    static func wrap(_ paragraph: String, width: Int = 72) -> String {
        var lines: [String] = []
        var line = ""
        for word in paragraph.split(separator: " ") {
            if !line.isEmpty, line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += line.isEmpty ? String(word) : " " + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines.joined(separator: "\n")
    }
}

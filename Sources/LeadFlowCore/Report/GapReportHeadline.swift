import Foundation

/// The sentence each connection that needs someone gets at the top of the report: who must
/// act, by when, and what is at stake, in the words of the Integrate article (reauthenticate,
/// Connector Authenticator, Manage Pages and Leads Retrieval) and the Page's own name.
extension GapReport {
    static func attention(_ c: Connection, facts: GapFacts, evaluation: TokenPolicy.Evaluation, now: Date,
                          dates: ReportDates) -> Attention? {
        let page = c.pageTitle
        let unrecovered = facts.periods.filter { $0.backfilledAt == nil }.sorted { $0.startedAt < $1.startedAt }
        let reminder = evaluation.status == .reminderDue
            ? "\(c.authenticatorTitle) must reauthenticate \(page) by \(dates.day(evaluation.expiresAt)) "
                + "(\(daysLeft(evaluation.expiresAt.timeIntervalSince(now)))) to keep its leads coming."
            : nil

        if let open = unrecovered.last(where: { $0.endedAt == nil }) {
            let lostOn = open.startedAt.addingTimeInterval(leadRetention)
            let opening = "No leads from \(page) since \(dates.day(open.startedAt)) "
                + "(\(days(ReportDates.wholeDays(now.timeIntervalSince(open.startedAt))))). "
            let waiting = c.waiting ?? 0
            if now < lostOn {
                let leads = waiting > 0 ? "About \(count(waiting)) leads are waiting in Facebook" : "What it receives waits in Facebook"
                return Attention(kind: .void, actBy: c.recoverBy ?? lostOn,
                                 sentence: opening + leads + "; the first are lost on \(dates.day(lostOn)) unless "
                                     + reauthenticates(c, cause: open.cause) + ".")
            }
            let lost = (c.missing ?? 0) - waiting
            return Attention(kind: .partlyLost, actBy: c.recoverBy ?? lostOn,
                             sentence: opening + "Its leads from before \(dates.day(now.addingTimeInterval(-leadRetention))) are already lost"
                                 + (lost > 0 ? " (about \(count(lost)))" : "") + "; "
                                 + (waiting > 0 ? "about \(count(waiting)) more are waiting in Facebook, and " : "")
                                 + "more are lost every day until " + reauthenticates(c, cause: open.cause) + ".")
        }

        if case .expired = evaluation.status {
            // Void by the policy's clock, before any run has recorded the period.
            let lostOn = evaluation.expiresAt.addingTimeInterval(leadRetention)
            return Attention(kind: .void, actBy: min(c.recoverBy ?? lostOn, lostOn),
                             sentence: "\(page)'s authentication ended on \(dates.day(evaluation.expiresAt)): no leads come in until "
                                 + reauthenticates(c, cause: evaluation.expiryCause) + "; the first are lost on \(dates.day(lostOn)).")
        }

        if let first = unrecovered.first, let lastEnd = unrecovered.last?.endedAt {
            let span = dates.range(first.startedAt, lastEnd)
            let lostOn = first.startedAt.addingTimeInterval(leadRetention)
            let estimate = unrecovered.count > 1
            // Everything of these periods is past Facebook's retention: only the count is left to tell.
            if unrecovered.allSatisfy({ now >= $0.endedAt!.addingTimeInterval(leadRetention) }) {
                let lost = unrecovered.reduce(0) { $0 + $1.lost }
                return Attention(kind: .lost, actBy: nil,
                                 sentence: (lost > 0 ? "\(count(lost)) leads that" : "The leads") + " \(page) received \(span) were never loaded, "
                                     + "and Facebook no longer keeps them: they are lost." + (reminder.map { " " + $0 } ?? ""))
            }
            // The counters say nothing waits: a late run loaded the period's leads already.
            if c.waiting != 0 || estimate {
                let leads = c.waiting.map { (estimate ? "about " : "") + "\(count($0)) leads" } ?? "its leads"
                let opening = "\(page) was reauthenticated on \(dates.day(lastEnd)), but \(leads) from \(span) are not loaded yet"
                let backfill = "the Integrate team must run `leadflow backfill --connection \(facts.label)`"
                let sentence = now < lostOn
                    ? opening + ": \(backfill) before \(dates.day(lostOn)), when the first are lost."
                    : opening + " and the oldest are already lost: \(backfill) now."
                return Attention(kind: now < lostOn ? .awaitingBackfill : .partlyLost,
                                 actBy: min(c.recoverBy ?? lostOn, evaluation.status == .reminderDue ? evaluation.expiresAt : lostOn),
                                 sentence: sentence + (reminder.map { " " + $0 } ?? ""))
            }
        }

        if let reminder {
            return Attention(kind: .reminderDue, actBy: evaluation.expiresAt, sentence: reminder)
        }
        return nil
    }

    /// Who can bring the connection back. A revoked permission may mean the authenticator
    /// left: the article lets anyone with the same permissions on the Page take over.
    static func reauthenticates(_ c: Connection, cause: VoidCause) -> String {
        switch cause {
        case .permissionRevoked, .leadAccessLost:
            return "someone with Manage Pages and Leads Retrieval on \(c.pageTitle) reauthenticates it "
                + "(\(c.authenticatorTitle) no longer has them)"
        case .tokenExpired, .dataAccessExpired, .tokenInvalidated:
            return "\(c.authenticatorTitle) reauthenticates \(c.pageTitle)"
        }
    }

    static func days(_ n: Int) -> String { n == 1 ? "1 day" : "\(n) days" }

    static func daysLeft(_ seconds: TimeInterval) -> String {
        let n = ReportDates.wholeDays(seconds)
        return n < 1 ? "less than a day left" : days(n) + " left"
    }

    /// "1,230": counts people read.
    static func count(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(digit)
        }
        return (n < 0 ? "-" : "") + out
    }
}

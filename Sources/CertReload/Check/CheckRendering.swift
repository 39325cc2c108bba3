/// Renders check reports for people (text) and for machines (JSON).
public struct CheckRendering: Sendable {
    public var color: Bool

    public init(color: Bool) {
        self.color = color
    }

    // MARK: JSON

    public static func json(_ report: CheckReport) -> JSON {
        .object([
            ("usable", .bool(report.usable)),
            ("access", .object([
                ("user", .string(report.account.name)),
                ("uid", .int(Int64(report.account.uid))),
                ("method", .string(report.accessMethod.rawValue)),
                ("service_user_given", .bool(report.serviceUserGiven)),
            ])),
            ("lineages", .array(report.lineages.map { lineageJSON($0, user: report.account.name) })),
        ])
    }

    static func lineageJSON(_ lineage: LineageReport, user: String) -> JSON {
        var pairs: [(String, JSON)] = [
            ("name", .string(lineage.name)),
            ("path", .string(lineage.path)),
            ("usable", .bool(lineage.usable)),
            ("version", lineage.version.map { .int(Int64($0)) } ?? .null),
        ]
        if let certificate = lineage.certificate {
            pairs.append(("certificate", certificateJSON(certificate)))
        } else {
            pairs.append(("certificate", .null))
        }
        pairs.append(("files", .object(LineageFile.allCases.compactMap { kind in
            guard let file = lineage.files[kind] else { return nil }
            return (kind.rawValue, .object([("path", .string(file.path)), ("real_path", .string(file.realPath))]))
        })))
        pairs.append(("problems", .array(lineage.problems.map(problemJSON))))
        pairs.append(("fix_plan", fixPlanJSON(lineage.fixPlan)))
        return .object(pairs)
    }

    /// The plan as argv arrays (never a shell string); an empty list when nothing is to change.
    public static func fixPlanJSON(_ plan: AccessFixPlan?) -> JSON {
        .array((plan?.argvs ?? []).map { .array($0.map(JSON.string)) })
    }

    /// Details of a plan beside `fix_plan`: the group, who shares it, notes.
    public static func fixPlanDetailsJSON(_ plan: AccessFixPlan) -> JSON {
        .object([
            ("user", .string(plan.user)),
            ("group", .string(plan.group)),
            ("shared_with", .array(plan.sharedWith.map(JSON.string))),
            ("fix_plan", fixPlanJSON(plan)),
            ("notes", .array(plan.notes.map(JSON.string))),
        ])
    }

    public static func certificateJSON(_ certificate: CertificateSummary) -> JSON {
        .object([
            ("subject", .string(certificate.subject)),
            ("issuer", .string(certificate.issuer)),
            ("sans", .array(certificate.subjectAltNames.map(JSON.string))),
            ("not_before", .string(isoTime(certificate.notBefore))),
            ("not_after", .string(isoTime(certificate.notAfter))),
            ("sha256", .string(certificate.sha256)),
            ("key", .optional(certificate.keyAlgorithm)),
            ("self_signed", .bool(certificate.selfSigned)),
        ])
    }

    public static func problemJSON(_ problem: Problem) -> JSON {
        .object([
            ("severity", .string(problem.severity.rawValue)),
            ("code", .string(problem.code.rawValue)),
            ("path", .optional(problem.path)),
            ("user", .optional(problem.user)),
            ("message", .string(problem.message)),
            ("fix", .optional(problem.fix)),
        ])
    }

    // MARK: Text

    private func paint(_ text: String, _ code: String) -> String {
        color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    public func text(_ report: CheckReport, now: Int64) -> String {
        var out = ""
        let who = report.account.describedWithGroups
        if report.serviceUserGiven {
            out += "Access checked as service user \(who), \(report.accessMethod == .tried ? "by trying" : "evaluated from modes and ACLs (not tried: run as root to try)").\n"
        } else {
            out += "No service user given (--user): access checked as \(who), the account certreload runs as.\n"
        }
        if report.lineages.isEmpty {
            out += "No lineages found.\n"
        }
        for lineage in report.lineages {
            out += "\n" + text(lineage, now: now)
        }
        let bad = report.lineages.filter { !$0.usable }.count
        let warned = report.lineages.filter { $0.usable && !$0.problems.isEmpty }.count
        out += "\n\(report.lineages.count) lineage(s): \(report.lineages.count - bad) usable"
        if warned > 0 { out += " (\(warned) with warnings)" }
        if bad > 0 { out += ", " + paint("\(bad) unusable", "1;31") }
        out += ".\n"
        return out
    }

    public func text(_ lineage: LineageReport, now: Int64) -> String {
        var out = ""
        let status = lineage.usable
            ? (lineage.problems.isEmpty ? paint("OK", "1;32") : paint("OK with warnings", "1;33"))
            : paint("UNUSABLE", "1;31")
        let version = lineage.version.map { ", version \($0)" } ?? ""
        out += "\(paint(lineage.name, "1"))  \(status)  (\(lineage.path)\(version))\n"
        if let certificate = lineage.certificate {
            out += "  subject   \(certificate.subject)\n"
            out += "  issuer    \(certificate.issuer)\(certificate.selfSigned ? " (self-signed)" : "")\n"
            out += "  names     \(certificate.subjectAltNames.isEmpty ? "(none)" : certificate.subjectAltNames.joined(separator: ", "))\n"
            let days = (certificate.notAfter - now) / 86_400
            out += "  valid     \(isoTime(certificate.notBefore)) to \(isoTime(certificate.notAfter)) (\(days) days left)\n"
            if let key = certificate.keyAlgorithm { out += "  key       \(key)\n" }
            out += "  sha256    \(certificate.sha256)\n"
        }
        for problem in lineage.problems {
            let label = problem.severity == .error ? paint("error", "1;31") : paint("warning", "1;33")
            out += "  \(label) [\(problem.code.rawValue)] \(problem.message)\n"
            if let fix = problem.fix {
                out += "    fix: \(fix)\n"
            }
        }
        if let plan = lineage.fixPlan {
            out += fixPlanText(plan, indent: "  ")
        }
        return out
    }

    /// "The whole fix …" and the block to paste, one command a line.
    public func fixPlanText(_ plan: AccessFixPlan, indent: String) -> String {
        var out = "\(indent)\(paint("whole fix", "1")) for \(plan.user) on \(plan.lineages.joined(separator: ", ")): every directory and key on the way, "
            + "through group \(plan.group); certbot copies the key's group and group bits to each new key, so it lasts across renewals. "
            + "Paste as root, or run `certreload grant \(plan.user) \(plan.lineages.joined(separator: " "))`:\n"
        if !plan.sharedWith.isEmpty {
            out += "\(indent)  # \(plan.sharedWith.joined(separator: ", ")) read\(plan.sharedWith.count == 1 ? "s" : "") these files through their current group: \(plan.group) is shared so \(plan.sharedWith.count == 1 ? "it keeps" : "they keep") access\n"
        }
        for change in plan.changes {
            out += "\(indent)    \(change.commandLine)\n"
        }
        for note in plan.notes {
            out += "\(indent)  # \(note)\n"
        }
        return out
    }
}

/// Renders a doctor report: one table, the checks as the serving accounts, the causes, the plan.
public struct DoctorRendering: Sendable {
    public var color: Bool

    public init(color: Bool) {
        self.color = color
    }

    private func paint(_ text: String, _ code: String) -> String {
        color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    // MARK: JSON

    public static func json(_ report: DoctorReport) -> JSON {
        .object([
            ("host", .string(report.host)),
            ("connect", .optional(report.connect)),
            ("certbot_dir", .string(report.certbotDirectory)),
            ("healthy", .bool(report.healthy)),
            ("elapsed_seconds", .string(ProbeText.seconds(report.elapsedSeconds))),
            ("ports", .array(report.rows.map(rowJSON))),
            ("covering", .array(report.covering.map { .object([("lineage", .string($0.name)), ("wildcard", .bool($0.wildcard))]) })),
            ("checks", .array(report.checks.map(checkJSON))),
            ("problems", .array(report.problems.map(CheckRendering.problemJSON))),
            ("plan", .array(report.plan.map(JSON.string))),
            ("notes", .array(report.notes.map(JSON.string))),
        ])
    }

    static func rowJSON(_ row: DoctorRow) -> JSON {
        .object([
            ("scheme", .string(row.port.scheme)),
            ("port", .int(Int64(row.port.port))),
            ("url", .string(row.url)),
            ("state", .string(row.state.rawValue)),
            ("transport", row.transport.isEmpty ? .null : .string(row.transport)),
            ("starttls_offered", row.startTLSOffered.map(JSON.bool) ?? .null),
            ("server_said", .array(row.serverSaid.map { .string(ProbeText.printable($0, limit: 200)) })),
            ("hint", .optional(row.hint)),
            ("error", row.failure.map { .object([("code", .string($0.code.rawValue)), ("message", .string($0.message))]) } ?? .null),
            ("owner", row.owner.map { owner in
                .object([
                    ("uid", .int(Int64(owner.uid))), ("user", .string(owner.user)),
                    ("pid", owner.pid.map { .int(Int64($0)) } ?? .null), ("process", .optional(owner.process)),
                    ("pids", .array(owner.pids.map { .int(Int64($0)) })),
                ])
            } ?? .null),
            ("sni", row.withSNI.map(leafJSON) ?? .null),
            ("no_sni", row.withoutSNI.map(leafJSON) ?? .null),
            ("no_sni_error", .optional(row.withoutSNIFailure)),
            ("manual", .string(row.manual)),
        ])
    }

    static func leafJSON(_ leaf: DoctorLeaf) -> JSON {
        .object([
            ("sha256", .string(leaf.sha256)),
            ("subject", .string(leaf.subject)),
            ("issuer", .string(leaf.issuer)),
            ("sans", .array(leaf.subjectAltNames.map(JSON.string))),
            ("self_signed", .bool(leaf.selfSigned)),
            ("covers_host", .bool(leaf.coversHost)),
            ("wildcard_match", .bool(leaf.wildcardMatch)),
            ("not_after", leaf.notAfter.map { .string(isoTime($0)) } ?? .null),
            ("days_left", leaf.daysLeft.map { .int(Int64($0)) } ?? .null),
            ("trusted", .bool(leaf.trusted)),
            ("trust_detail", .string(leaf.trustDetail)),
            ("protocol", .string(leaf.protocolVersion)),
            ("disk", diskJSON(leaf.disk)),
        ])
    }

    static func diskJSON(_ match: DiskMatch) -> JSON {
        switch match {
        case .current(let name, let version):
            return .object([("match", .string("current")), ("lineage", .string(name)), ("version", .int(Int64(version)))])
        case .older(let name, let version, let current, let since):
            return .object([
                ("match", .string("older")), ("lineage", .string(name)), ("version", .int(Int64(version))),
                ("current_version", .int(Int64(current))), ("current_since", .string(isoTime(since))),
            ])
        case .none:
            return .object([("match", .string("none"))])
        }
    }

    static func checkJSON(_ check: DoctorCheck) -> JSON {
        var pairs: [(String, JSON)] = [
            ("user", .string(check.account.name)),
            ("uid", .int(Int64(check.account.uid))),
            ("lineage", .string(check.lineage)),
            ("reason", .string(check.reason)),
            ("ports", .array(check.ports.map { .int(Int64($0)) })),
            ("method", .string(check.report.accessMethod.rawValue)),
            ("usable", .bool(check.report.usable)),
        ]
        if let lineage = check.lineageReport {
            pairs.append(("problems", .array(lineage.problems.map(CheckRendering.problemJSON))))
            pairs.append(("fix_plan", CheckRendering.fixPlanJSON(lineage.fixPlan)))
            pairs.append(("fix_plan_details", lineage.fixPlan.map(CheckRendering.fixPlanDetailsJSON) ?? .null))
        }
        return .object(pairs)
    }

    // MARK: Text

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    static func diskText(_ match: DiskMatch) -> String {
        switch match {
        case .current(let name, let version): return "\(name) v\(version) (current)"
        case .older(let name, let version, let current, _): return "\(name) v\(version) (current v\(current))"
        case .none: return "nothing on disk"
        }
    }

    static func leafText(_ leaf: DoctorLeaf?) -> String {
        guard let leaf else { return "-" }
        let cn = leaf.subject.split(separator: ",").first { $0.trimmingPrefix(" ").hasPrefix("CN=") }.map { String($0.trimmingPrefix(" ")) } ?? leaf.subject
        return "\(ProbeText.printable(cn, limit: 40)) \(leaf.sha256.prefix(8))"
    }

    public func text(_ report: DoctorReport) -> String {
        var out = "certreload doctor \(report.host)"
        out += report.connect.map { " (dialling \($0), SNI \(report.host))" } ?? ""
        out += "; certbot directory \(report.certbotDirectory); \(ProbeText.seconds(report.elapsedSeconds))\n\n"
        let header = ["PORT", "TLS", "STARTTLS", "LEAF (SNI=\(report.host))", "WITHOUT SNI", "SELF-SIGNED", "COVERS HOST", "DAYS", "TRUSTED", "ON DISK", "SERVED BY"]
        var table: [[String]] = [header]
        for row in report.rows {
            let port = "\(row.port.scheme) \(row.port.port)"
            switch row.state {
            case .closed:
                table.append([port, "closed"] + Array(repeating: "", count: header.count - 2))
                continue
            case .noAnswer:
                table.append([port, "no answer"] + Array(repeating: "", count: header.count - 2))
                continue
            case .open, .failed:
                break
            }
            let leaf = row.withSNI
            let starttls = row.startTLSOffered.map { $0 ? "offered" : "NOT offered" } ?? "-"
            let noSNI: String
            if let other = row.withoutSNI, let leaf {
                noSNI = other.sha256 == leaf.sha256 ? "same" : DoctorRendering.leafText(other)
            } else {
                noSNI = DoctorRendering.leafText(row.withoutSNI)
            }
            let covers = leaf.map { $0.coversHost ? ($0.wildcardMatch ? "yes (wildcard)" : "yes") : "NO" } ?? "-"
            let owner = row.owner.map { "\($0.process ?? "?") (pid \($0.pid.map(String.init) ?? "?")) as \($0.user)" } ?? "-"
            table.append([
                port, row.state == .failed ? "failed" : row.transport, starttls, DoctorRendering.leafText(leaf), noSNI,
                leaf.map { $0.selfSigned ? "YES" : "no" } ?? "-", covers, leaf?.daysLeft.map(String.init) ?? "-",
                leaf.map { $0.trusted ? "yes" : "no" } ?? "-", leaf.map { DoctorRendering.diskText($0.disk) } ?? "-", owner,
            ])
        }
        let widths = (0..<header.count).map { column in table.map { $0[column].count }.max() ?? 0 }
        for line in table {
            var text = ""
            for (column, cell) in line.enumerated() {
                text += column == line.count - 1 ? cell : DoctorRendering.pad(cell, widths[column] + 1)
            }
            while text.hasSuffix(" ") { text.removeLast() }
            out += text + "\n"
        }
        for row in report.rows where row.state == .open || row.state == .failed {
            if row.startTLSOffered == false {
                out += "  \(row.port.scheme) \(row.port.port): the server said \(ProbeText.quote(row.serverSaid))\n"
            }
            if let hint = row.hint { out += "  \(row.port.scheme) \(row.port.port): \(hint)\n" }
        }
        out += "\n"
        if let first = report.covering.first {
            out += "Lineage covering \(report.host): \(first.name)\(first.wildcard ? " (through its wildcard name)" : "")"
            if report.covering.count > 1 { out += "; also \(report.covering.dropFirst().map(\.name).joined(separator: ", "))" }
            let served = report.rows.contains { row in
                if case .current(first.name, _)? = row.withSNI?.disk { return true }
                if case .older(first.name, _, _, _)? = row.withSNI?.disk { return true }
                return false
            }
            out += served ? ".\n" : "; no port serves it.\n"
        } else {
            out += "No lineage in \(report.certbotDirectory) covers \(report.host).\n"
        }
        let rendering = CheckRendering(color: color)
        for check in report.checks {
            let status = check.report.usable ? paint("usable", "1;32") : paint("UNUSABLE", "1;31")
            out += "\nCheck of \(check.lineage) as \(check.account.describedWithGroups): \(status) (\(check.report.accessMethod == .tried ? "tried as \(check.account.name)" : "evaluated")); why this account: \(check.reason)\n"
            if let plan = check.lineageReport?.fixPlan {
                out += rendering.fixPlanText(plan, indent: "  ")
            }
        }
        if !report.notes.isEmpty {
            out += "\n" + report.notes.map { "  \($0)\n" }.joined()
        }
        let errors = report.problems.filter { $0.severity == .error }.count
        let warnings = report.problems.count - errors
        if !report.problems.isEmpty {
            out += "\nCauses:\n"
            for problem in report.problems {
                let label = problem.severity == .error ? paint("error", "1;31") : paint("warning", "1;33")
                out += "  \(label) [\(problem.code.rawValue)] \(problem.message)\n"
                if let fix = problem.fix { out += "    fix: \(fix)\n" }
            }
        }
        out += "\nPlan:\n"
        for (index, step) in report.plan.enumerated() {
            out += "  \(index + 1). \(step)\n"
        }
        out += "\n" + (report.healthy
            ? paint("Healthy", "1;32") + (warnings > 0 ? " (\(warnings) warning(s))" : "") + ".\n"
            : paint("\(errors) error(s)", "1;31") + (warnings > 0 ? ", \(warnings) warning(s)" : "") + ".\n")
        return out
    }
}

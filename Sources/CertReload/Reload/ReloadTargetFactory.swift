extension TargetConfiguration {
    /// The reload target this configuration names (exactly one kind per target).
    public func makeReloadTarget() throws(ReloadError) -> any ReloadTarget {
        switch reload {
        case .stalwart(let url, let api, let token, let username, let password):
            return try StalwartReloadTarget(url: url, api: api, token: token, username: username, password: password, trust: endpointTrust)
        case .caddy(let url):
            return try CaddyReloadTarget(url: url, trust: endpointTrust)
        case .http(let url, let method, let headers, let body, let token, let expectStatus):
            return try HTTPReloadTarget(
                url: url, method: method, headers: headers, body: body, token: token, expectStatus: expectStatus, trust: endpointTrust)
        case .systemd(let unit, let mode):
            return SystemdReloadTarget(unit: unit, mode: mode)
        case .signal(let name, let pidFile, let unit):
            return SignalReloadTarget(signal: name, pidFile: pidFile, unit: unit)
        case .command(let argv, let timeout):
            return CommandReloadTarget(argv: argv, timeout: timeout)
        }
    }
}

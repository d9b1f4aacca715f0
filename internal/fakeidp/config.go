package fakeidp

// ProviderConfig is the broker's `providers:` entry for a provider named
// name against this emulator, as a config file would hold it: type, client
// credentials, every endpoint pointed here and the preset's own settings
// (each dialect adds its own). With discovery, a provider that can discover
// its endpoints gets only its issuer. Every caller (the test kits,
// broker-dev, brokerbench) uses this one mapping.
func (e *Emulator) ProviderConfig(name string, discovery bool) map[string]any {
	ep := e.Endpoints()
	m := map[string]any{"name": name, "type": string(e.kind), "client_id": e.opts.ClientID}
	if e.opts.ClientSecret != "" {
		m["client_secret"] = e.opts.ClientSecret
	}
	if len(e.opts.ExtraAudiences) > 0 && e.d.oidc() {
		m["accept_audiences"] = append([]string(nil), e.opts.ExtraAudiences...)
	}
	for _, kv := range [][2]string{
		{"auth_url", ep.AuthURL}, {"token_url", ep.TokenURL}, {"userinfo_url", ep.UserinfoURL},
		{"issuer", ep.Issuer}, {"jwks_url", ep.JWKSURL}, {"revoke_url", ep.RevokeURL},
	} {
		if kv[1] != "" {
			m[kv[0]] = kv[1]
		}
	}
	e.d.providerConfig(e, m, discovery)
	return m
}

package fakeidp

// ProviderConfig is the broker's `providers:` entry for a provider named
// name against this emulator, as a config file would hold it: type, client
// credentials, the preset's own settings (Kakao's admin_key and scopes, the
// OAuth2 claim map) and every endpoint pointed here. With discovery, a
// provider that can discover its endpoints gets only its issuer. Every
// caller (the test kits, broker-dev, brokerbench) uses this one mapping.
func (e *Emulator) ProviderConfig(name string, discovery bool) map[string]any {
	ep := e.Endpoints()
	m := map[string]any{"name": name, "type": string(e.kind), "client_id": e.opts.ClientID}
	if e.opts.ClientSecret != "" {
		m["client_secret"] = e.opts.ClientSecret
	}
	if len(e.opts.ExtraAudiences) > 0 && e.kind.hasOIDC() {
		m["accept_audiences"] = append([]string(nil), e.opts.ExtraAudiences...)
	}
	set := func(kv ...string) {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				m[kv[i]] = kv[i+1]
			}
		}
	}
	set("auth_url", ep.AuthURL, "token_url", ep.TokenURL, "userinfo_url", ep.UserinfoURL,
		"issuer", ep.Issuer, "jwks_url", ep.JWKSURL, "revoke_url", ep.RevokeURL)
	switch e.kind {
	case Kakao:
		m["scopes"] = []string{"openid", "profile_nickname", "profile_image", "account_email"}
		if e.opts.AdminKey != "" {
			m["admin_key"] = e.opts.AdminKey
		}
	case Google, OIDC:
		if discovery {
			for _, k := range []string{"auth_url", "token_url", "userinfo_url", "jwks_url", "revoke_url"} {
				delete(m, k)
			}
		}
	case OAuth2:
		m["display_name"] = "Gitea"
		m["scopes"] = []string{"read:user"}
		m["pkce"] = true
		m["claims"] = map[string]string{"subject": "id", "email": "email", "name": "full_name", "picture": "avatar_url"}
	}
	return m
}

package providers

// Config is one entry of the config file's `providers:` list. It is decoded
// strictly (an unknown key is an error) and validated by the Registry.
type Config struct {
	Name            string            `yaml:"name"`
	Type            string            `yaml:"type"`
	ClientID        string            `yaml:"client_id"`
	ClientSecret    string            `yaml:"client_secret"`
	Scopes          []string          `yaml:"scopes"`
	DisplayName     string            `yaml:"display_name"`
	AuthURL         string            `yaml:"auth_url"`
	TokenURL        string            `yaml:"token_url"`
	UserinfoURL     string            `yaml:"userinfo_url"`
	Issuer          string            `yaml:"issuer"`
	JWKSURL         string            `yaml:"jwks_url"`
	RevokeURL       string            `yaml:"revoke_url"`
	AcceptAudiences []string          `yaml:"accept_audiences"`
	AdminKey        string            `yaml:"admin_key"` // kakao only
	Claims          map[string]string `yaml:"claims"`    // oauth2 only: subject, email, name, picture, email_verified
	Success         *SuccessCheck     `yaml:"success"`   // oauth2 only
	PKCE            *bool             `yaml:"pkce"`      // override the preset's PKCE default
}

// SuccessCheck refuses a userinfo body whose value at Path is not Equals
// (envelopes like Naver's {"resultcode":"00", ...}).
type SuccessCheck struct {
	Path   string `yaml:"path"`
	Equals string `yaml:"equals"`
}

package broker

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/socialbroker/broker/providers"
)

// maxNativeName caps the name a native app passes (given_name, family_name).
const maxNativeName = 256

// nativeGrant takes what a native app sends beside the id_token of a token
// exchange. given_name and family_name (iOS hands Apple's name to the app
// only) become the identity's name when the id_token has none. An
// authorization_code (the one-time code of an iOS Sign in with Apple
// credential) is redeemed by a provider that takes one, so that the grant
// is kept, sealed, and can be revoked later; the sealed grant is returned
// (nil without a code).
func (s *Server) nativeGrant(ctx context.Context, p providers.Provider, id *providers.Identity, f url.Values) ([]byte, error) {
	if id.Name == "" {
		name := strings.TrimSpace(strings.TrimSpace(f.Get("given_name")) + " " + strings.TrimSpace(f.Get("family_name")))
		if len(name) <= maxNativeName && providers.CleanText(name) {
			id.Name = name
		}
	}
	code := f.Get("authorization_code")
	if code == "" {
		return nil, nil
	}
	rd, ok := p.(providers.NativeCodeRedeemer)
	if !ok {
		return nil, errBadRequest(codeInvalidRequest, "This provider takes no authorization_code.")
	}
	if len(code) > 2048 {
		return nil, errBadRequest(codeInvalidRequest, "The authorization_code is too long.")
	}
	g, err := rd.RedeemNativeCode(ctx, *id, code)
	if err != nil {
		switch providers.ErrorCode(err) {
		case providers.CodeProviderError, providers.CodeProviderTimeout:
			return nil, &apiError{Status: http.StatusServiceUnavailable, Code: codeTemporarilyUnavail, Description: "The provider could not be reached. Try again shortly.", Cause: err}
		}
		return nil, &apiError{Status: http.StatusBadRequest, Code: codeInvalidGrant, Description: "The authorization_code was refused.", Cause: err}
	}
	id.Grant = g
	return s.sealGrant(*id)
}

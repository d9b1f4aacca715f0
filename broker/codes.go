package broker

import (
	"net/http"
	"strconv"
	"time"

	"github.com/socialbroker/broker/providers"
)

// Code is a public error code: the "error" member of a JSON answer (API)
// or the code on the HTML error page (browser). ErrorCodes documents where
// each is sent; internal/web holds the page wording.
type Code string

// The codes the broker sends.
const (
	codeInvalidRequest       Code = "invalid_request"
	codeInvalidState         Code = "invalid_state"
	codeUnknownProvider      Code = "unknown_provider"
	codeReturnToNotAllowed   Code = "return_to_not_allowed"
	codeRateLimited          Code = "rate_limited"
	codeTemporarilyUnavail   Code = "temporarily_unavailable"
	codeServerError          Code = "server_error"
	codeSignupExpired        Code = "signup_expired"
	codeSignupRequired       Code = "signup_required"
	codeTermsRequired        Code = "terms_required"
	codeIdentityConflict     Code = "identity_conflict"
	codeLastIdentity         Code = "last_identity"
	codeInvalidGrant         Code = "invalid_grant"
	codeInvalidToken         Code = "invalid_token"
	codeInvalidClient        Code = "invalid_client"
	codeInvalidOrigin        Code = "invalid_origin"
	codeUnsupportedGrantType Code = "unsupported_grant_type"
	codeNotFound             Code = "not_found"
	codeMethodNotAllowed     Code = "method_not_allowed"

	// A provider's failure, shown on the error page as the provider said.
	codeAccessDenied    Code = providers.CodeAccessDenied
	codeInvalidIDToken  Code = providers.CodeInvalidIDToken
	codeInvalidResponse Code = providers.CodeInvalidResponse
	codeProviderError   Code = providers.CodeProviderError
	codeProviderTimeout Code = providers.CodeProviderTimeout
)

// retryUnavailable is how long a 503 (database unreachable) asks clients
// to wait.
const retryUnavailable = 5 * time.Second

// setRetryAfter is the one writer of Retry-After: d in whole seconds.
func setRetryAfter(h http.Header, d time.Duration) {
	h.Set("Retry-After", strconv.Itoa(int(d/time.Second)))
}

package broker

// ErrorCode documents one error the broker emits: a code on one surface with
// one HTTP status. It is documentation only; nothing reads it at run time.
// docs/errors.md is the prose version of ErrorCodes, and errorcodes_test.go
// checks the table against the handlers, the provider error codes and the
// error page's catalogue.
type ErrorCode struct {
	// Code is the "error" member of a JSON answer (Surface "api") or the
	// code printed on the HTML error page (Surface "page").
	Code string
	// Status is the HTTP status of the answer.
	Status int
	// Surface is "page" (HTML error page, wording from internal/web) or
	// "api" (JSON {"error","error_description"}).
	Surface string
	// Endpoints lists the routes that can answer this way.
	Endpoints string
	// When says what makes the broker answer this way.
	When string
	// ProviderCauses lists the provider answers that end here ("" when the
	// error never comes from a provider).
	ProviderCauses string
}

// ErrorCodes is every error the broker emits, browser pages first, then the
// API. A code appears once per (surface, status) it is sent with.
var ErrorCodes = []ErrorCode{
	// Browser pages: GET /, /auth/login, /auth/login/{provider},
	// /auth/link/{provider}, /auth/callback/{provider}, GET and POST
	// /auth/signup. The page shows the code and plain words in ko or en.
	{
		Code: "invalid_request", Status: 400, Surface: "page",
		Endpoints: "GET and POST /auth/callback/{provider}, POST /auth/signup, GET /auth/login/{provider} (native app), GET /auth/link/{provider}",
		When:      "callback without a code (or a code over 2048 bytes), or with code or error given twice; a form_post callback (Apple) whose body is unparseable or over 64 KiB, with state, code or error given twice, without a code or an error, with a code over 1024 bytes, or with a user field that is not Apple's JSON; a form_post continuation with other parameters; signup form body unparseable or over 64 KiB; any page whose input the database refuses as text (storage.ErrInvalid); a native app's login start (client_id, redirect_uri, code_challenge or code_challenge_method present) with code_challenge_method missing or not S256 (plain is refused), a code_challenge that is not 43 base64url characters, a state over 512 characters or not printable ASCII, a response_type other than code, a return_to, or a parameter given twice, or any of them on a link (linking from an app is not supported): checked before anything is created, no redirect",
	},
	{
		Code: "invalid_request", Status: 401, Surface: "page",
		Endpoints: "GET /auth/link/{provider}, GET /auth/callback/{provider}",
		When:      "link without exactly one live refresh cookie (missing, duplicated, malformed, unknown, revoked, expired or idle session, or an older generation of the session's token, which revokes the session); a link callback in a browser that does not hold the live token of the session that started the link, or after that session ended",
	},
	{
		Code: "invalid_request", Status: 403, Surface: "page",
		Endpoints: "POST /auth/signup",
		When:      "Origin neither the broker's own nor in cors.allowed_origins (the API's invalid_origin, shown as invalid_request)",
	},
	{
		Code: "invalid_state", Status: 400, Surface: "page",
		Endpoints: "GET and POST /auth/callback/{provider}",
		When:      "state cookie missing, duplicated, forged or older than 10 minutes; cookie for another provider; state parameter missing, different or given twice; state already used (replay, also a replayed form_post); a form_post without state; the form_post continuation (?form_post=1) without its sealed values, or after 60 s",
	},
	{
		Code: "unknown_provider", Status: 404, Surface: "page",
		Endpoints: "GET /auth/login/{provider}, GET /auth/link/{provider}, GET and POST /auth/callback/{provider}",
		When:      "no configured provider has that name (the callback checks the state cookie first, so without one it answers invalid_state)",
	},
	{
		Code: "return_to_not_allowed", Status: 400, Surface: "page",
		Endpoints: "GET /, GET /auth/login, GET /auth/login/{provider}, GET /auth/link/{provider}",
		When:      "return_to does not match redirects.allowed (after resolving a relative one against redirects.default), or is given twice",
	},
	{
		Code: "invalid_client", Status: 400, Surface: "page",
		Endpoints: "GET /auth/login/{provider} (native app)",
		When:      "client_id is not one of native_apps; nothing is created, no redirect",
	},
	{
		Code: "invalid_redirect_uri", Status: 400, Surface: "page",
		Endpoints: "GET /auth/login/{provider} (native app)",
		When:      "redirect_uri is not one registered for the client_id, spelled exactly (a loopback one on any port): an extra query or a fragment, another scheme, host, path or case; nothing is created, no redirect",
	},
	{
		Code: "access_denied", Status: 403, Surface: "page",
		Endpoints:      "GET /auth/callback/{provider}",
		When:           "the provider redirected back with error=access_denied, consent_required or login_required, or posted error=user_cancelled_authorize (Apple)",
		ProviderCauses: "user pressed cancel / refused consent at Kakao, Naver, Google, Apple or any OIDC/OAuth2 provider",
	},
	{
		Code: "invalid_grant", Status: 400, Surface: "page",
		Endpoints:      "GET /auth/callback/{provider}",
		When:           "the token endpoint refused the authorization code as a grant problem",
		ProviderCauses: "any token error with error=invalid_grant (Google invalid_grant; Kakao KOE320 reused/expired code or failed PKCE, and KOE303 redirect URI mismatch, which Kakao also sends as invalid_grant); a Kakao body with error_code KOE320 whatever its error; Naver HTTP 200 error=invalid_request (\"no valid data in session\"); type oauth2 HTTP 400 error=unauthorized_client (Gitea)",
	},
	{
		Code: "invalid_id_token", Status: 400, Surface: "page",
		Endpoints:      "GET /auth/callback/{provider}",
		When:           "the id_token of the token response failed verification",
		ProviderCauses: "no id_token in the token response (OIDC, Google, Kakao with openid); bad signature or algorithm (RS256/ES256 only); unknown kid after the JWKS refetch (at most one per 10 s); iss; aud/azp not client_id or accept_audiences; expired; no iat or iat in the future; nonce mismatch; no sub; sub differs from Kakao's /v2/user/me id or the OIDC userinfo sub",
	},
	{
		Code: "invalid_response", Status: 502, Surface: "page",
		Endpoints:      "GET /auth/callback/{provider}",
		When:           "userinfo (or the JWKS) answered 4xx, or a 2xx body that is not the expected document",
		ProviderCauses: "Kakao /v2/user/me -401 (HTTP 401) and -402 (HTTP 403, consent missing) or an id that is missing or not a decimal integer; Naver /v1/nid/me resultcode other than 00 (e.g. 024 Authentication failed, with HTTP 200 or 401) or no response.id; OIDC userinfo without sub; type oauth2 success check failed or no subject; a subject that is not 1-255 bytes of printable UTF-8; malformed userinfo JSON; a JWKS endpoint answering 4xx",
	},
	{
		Code: "provider_error", Status: 502, Surface: "page",
		Endpoints:      "GET /auth/login/{provider}, GET /auth/link/{provider}, GET /auth/callback/{provider}",
		When:           "the provider failed, or refused us for a reason that is the deployment's, not the user's",
		ProviderCauses: "an authorize error redirect other than access_denied/consent_required/login_required (e.g. invalid_scope, server_error); token errors other than the invalid_grant ones (invalid_client incl. Kakao KOE010/KOE101, Google redirect_uri_mismatch and invalid_client, Kakao invalid_request KOE001); HTTP 5xx, 3xx or 1xx; HTML instead of JSON; body over 1 MiB; connection refused or reset; unusable token response (no access_token); discovery 4xx/5xx, malformed, issuer mismatch or missing endpoints; JWKS malformed or without usable keys",
	},
	{
		Code: "provider_timeout", Status: 504, Surface: "page",
		Endpoints:      "GET /auth/login/{provider}, GET /auth/link/{provider}, GET /auth/callback/{provider}",
		When:           "a provider call got no answer within its timeout (10 s per call by default, 25 s for all calls of one request)",
		ProviderCauses: "timeouts of discovery, token, JWKS or userinfo",
	},
	{
		Code: "signup_expired", Status: 400, Surface: "page",
		Endpoints: "GET /auth/signup, POST /auth/signup",
		When:      "signup cookie missing, duplicated, forged or older than 10 minutes; the form already submitted (double submit)",
	},
	{
		Code: "identity_conflict", Status: 409, Surface: "page",
		Endpoints: "GET /auth/callback/{provider} (a link)",
		When:      "the identity being linked belongs to another user; nothing changes (the same user's own identity is no conflict: 303)",
	},
	{
		Code: "terms_required", Status: 403, Surface: "page",
		Endpoints: "GET /auth/callback/{provider}",
		When:      "signup.mode auto and a new identity that has not agreed to every required term of signup.terms (with Kakao Sync, at Kakao's consent screen as /v2/user/service_terms reports it; any other provider collects none); no user is created",
	},
	{
		Code: "user_disabled", Status: 403, Surface: "page",
		Endpoints: "GET /auth/callback/{provider}",
		When:      "the identity's user is disabled by an operator (admin API); no session starts (a native app's login goes back to the app with error=access_denied instead)",
	},
	{
		Code: "not_found", Status: 404, Surface: "page",
		Endpoints: "any path no route serves, outside the API paths",
		When:      "no such page",
	},
	{
		Code: "method_not_allowed", Status: 405, Surface: "page",
		Endpoints: "any page path, with a method its route does not serve",
		When:      "e.g. POST /auth/login/{provider}, or POST /auth/callback/{provider} of a provider that does not call back with form_post; the Allow header lists the methods that work",
	},
	{
		Code: "rate_limited", Status: 429, Surface: "page",
		Endpoints: "GET /auth/login/{provider}, GET /auth/link/{provider}, GET and POST /auth/callback/{provider}",
		When:      "limits.per_minute.login (login and link) or .callback exceeded for the client address; Retry-After in seconds",
	},
	{
		Code: "temporarily_unavailable", Status: 503, Surface: "page",
		Endpoints: "every page that reads or writes the database",
		When:      "the database is unreachable; Retry-After: 5",
	},
	{
		Code: "server_error", Status: 500, Surface: "page",
		Endpoints: "every page",
		When:      "any other failure; also what the page shows for a code missing from its catalogue",
	},

	// API: JSON {"error","error_description"}, Cache-Control: no-store.
	{
		Code: "invalid_request", Status: 400, Surface: "api",
		Endpoints: "POST /auth/token, POST /auth/logout, POST|GET /auth/webhooks/kakao/unlink, POST /auth/webhooks/apple/{name}",
		When:      "a token in the URL query (refresh_token, subject_token, code, code_verifier); body unparseable; authorization_code without code, redirect_uri, client_id or code_verifier, or a code_verifier that is not 43-128 unreserved characters; a form parameter of /auth/token repeated (RFC 6749 §3.2); more than one refresh token (form field or cookie; the cookie is then cleared); token exchange: subject_token_type not id_token or no subject_token, unknown provider, provider without id_tokens (naver, oauth2), an authorization_code for a provider that takes none or over 2048 bytes; webhook without user_id, with it repeated, or with one that is not 1-20 decimal digits; Apple notification whose body is not {\"payload\":\"<JWS>\"}, whose JWS does not verify against Apple's JWKS, whose iss is not the issuer or aud not client_id or accept_audiences, without iat or with one in the future, expired (exp passed, or older than 72 h without exp), or whose events claim is not an event object with type and sub; any request whose input the database refuses as text (storage.ErrInvalid)",
	},
	{
		Code: "invalid_request", Status: 413, Surface: "api",
		Endpoints: "POST /auth/token, POST /auth/logout, POST|GET /auth/webhooks/kakao/unlink",
		When:      "request body over 64 KiB",
	},
	{
		Code: "invalid_origin", Status: 403, Surface: "api",
		Endpoints: "POST /auth/token, POST /auth/logout",
		When:      "Origin present and neither the broker's own nor in cors.allowed_origins (Origin: null passes only with Sec-Fetch-Site: same-origin)",
	},
	{
		Code: "unsupported_grant_type", Status: 400, Surface: "api",
		Endpoints: "POST /auth/token",
		When:      "grant_type other than empty (cookie refresh), refresh_token, token-exchange or authorization_code",
	},
	{
		Code: "invalid_grant", Status: 401, Surface: "api",
		Endpoints: "POST /auth/token (refresh, cookie or form), POST /auth/logout",
		When:      "refresh token missing, malformed, unknown, expired (absolute or idle), revoked, or reused after reuse_grace (which also revokes the session); one identical body for all; the cookie variant clears the cookie. Logout answers it only for an older generation of a session's token (a reuse: that session is revoked, no other)",
	},
	{
		Code: "invalid_grant", Status: 400, Surface: "api",
		Endpoints:      "POST /auth/token (token exchange, authorization_code)",
		When:           "the id_token failed verification, or was already exchanged; the exchange's authorization_code (Apple) was refused: spent, expired, of another client or its id_token of another subject; a native app's broker code that is malformed, unknown, expired (60 s), already used (which also revokes the session it started), or presented with another client_id, redirect_uri or a code_verifier that does not match its challenge (any presentation uses the code up)",
		ProviderCauses: "every invalid_id_token cause of the callback; also invalid_response from the JWKS endpoint (4xx)",
	},
	{
		Code: "signup_required", Status: 403, Surface: "api",
		Endpoints: "POST /auth/token (token exchange)",
		When:      "a valid id_token of a new identity under signup.mode: form",
	},
	{
		Code: "terms_required", Status: 403, Surface: "api",
		Endpoints: "POST /auth/token (token exchange)",
		When:      "signup.mode auto, a valid id_token of a new identity, and signup.terms has a required term (an id_token carries no agreement to terms): sign up in the browser; no user is created",
	},
	{
		Code: "user_disabled", Status: 403, Surface: "api",
		Endpoints: "POST /auth/token (token exchange)",
		When:      "a valid id_token whose user an operator disabled",
	},
	{
		Code: "temporarily_unavailable", Status: 503, Surface: "api",
		Endpoints: "every API endpoint that reads or writes the database; POST /auth/token also when no signing key is active; POST /auth/webhooks/apple/{name}",
		When:      "the database is unreachable, no signing key is loaded, (token exchange) the provider's keys could not be fetched or the authorization_code could not be redeemed (provider down), or (Apple notification) Apple's JWKS could not be fetched; Retry-After: 5",
	},
	{
		Code: "rate_limited", Status: 429, Surface: "api",
		Endpoints: "POST /auth/token",
		When:      "limits.per_minute.token exceeded for the client address; Retry-After in seconds",
	},
	{
		Code: "invalid_token", Status: 401, Surface: "api",
		Endpoints: "GET /auth/me, DELETE /auth/me, DELETE /auth/identities/{provider}",
		When:      "no Bearer token, or a bad, expired or foreign one; its session revoked or gone; its user deleted; WWW-Authenticate: Bearer error=\"invalid_token\" when an Authorization header was sent",
	},
	{
		Code: "not_found", Status: 404, Surface: "api",
		Endpoints: "DELETE /auth/identities/{provider}; any path under the API paths (/auth/token, /auth/logout, /auth/me, /auth/identities/, /auth/webhooks/) that no route serves",
		When:      "the user has no identity of that provider (also for a provider name that is not configured); no such endpoint",
	},
	{
		Code: "method_not_allowed", Status: 405, Surface: "api",
		Endpoints: "POST /auth/token, POST /auth/logout, GET and DELETE /auth/me, DELETE /auth/identities/{provider}, the Kakao unlink webhook",
		When:      "a method the endpoint does not serve (e.g. GET /auth/token); the Allow header lists the methods that work",
	},
	{
		Code: "last_identity", Status: 409, Surface: "api",
		Endpoints: "DELETE /auth/identities/{provider}",
		When:      "every identity the user has is of that provider; nothing changes",
	},
	{
		Code: "invalid_client", Status: 401, Surface: "api",
		Endpoints: "POST|GET /auth/webhooks/kakao/unlink, POST /auth/webhooks/apple/{name}",
		When:      "Authorization is not exactly `KakaoAK <admin_key>` of a configured kakao provider; for Apple, no apple provider has that name",
	},
	{
		Code: "server_error", Status: 500, Surface: "api",
		Endpoints: "every API endpoint; any route on a panic (JSON even for pages)",
		When:      "any other failure",
	},
}

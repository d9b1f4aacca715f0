package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"
)

// discoveryDoc is the part of an OpenID Provider's metadata we use.
type discoveryDoc struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	UserinfoEndpoint      string `json:"userinfo_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
}

// discovery fetches issuer + /.well-known/openid-configuration on first use
// and caches a good answer for the life of the registry. A failure is not
// cached: the next login tries again, so an outage at boot heals itself.
type discovery struct {
	h      *httpx
	issuer string
	url    string

	mu  sync.Mutex
	doc *discoveryDoc
	sf  singleflight.Group
}

func newDiscovery(h *httpx, issuer string) *discovery {
	return &discovery{
		h:      h,
		issuer: issuer,
		url:    strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration",
	}
}

func (d *discovery) get(ctx context.Context) (*discoveryDoc, error) {
	d.mu.Lock()
	doc := d.doc
	d.mu.Unlock()
	if doc != nil {
		return doc, nil
	}
	ch := d.sf.DoChan("discovery", func() (any, error) {
		d.mu.Lock()
		doc := d.doc
		d.mu.Unlock()
		if doc != nil {
			return doc, nil
		}
		doc, err := d.fetch(context.WithoutCancel(ctx))
		if err != nil {
			d.h.log.Warn("provider discovery failed", slog.String("issuer", d.issuer), slog.String("error", err.Error()))
			return nil, err
		}
		d.mu.Lock()
		d.doc = doc
		d.mu.Unlock()
		return doc, nil
	})
	select {
	case <-ctx.Done():
		return nil, transportError(ctx, nil, "discovery", ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*discoveryDoc), nil
	}
}

func (d *discovery) fetch(ctx context.Context) (*discoveryDoc, error) {
	body, perr := d.h.getJSON(ctx, "discovery", d.url, "")
	if perr != nil {
		if perr.Code == CodeInvalidResponse {
			perr.Code = CodeProviderError // a 404 here is the provider's (or the config's) problem
		}
		return nil, perr
	}
	var doc discoveryDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, &Error{Code: CodeProviderError, Cause: errors.New("discovery: malformed document")}
	}
	if doc.Issuer != d.issuer {
		return nil, &Error{Code: CodeProviderError, Cause: fmt.Errorf("discovery: issuer %q does not match the configured %q", doc.Issuer, d.issuer)}
	}
	for field, u := range map[string]string{
		"authorization_endpoint": doc.AuthorizationEndpoint,
		"token_endpoint":         doc.TokenEndpoint,
		"jwks_uri":               doc.JWKSURI,
		"userinfo_endpoint":      doc.UserinfoEndpoint,
		"revocation_endpoint":    doc.RevocationEndpoint,
	} {
		if u != "" && checkURL(u) != nil {
			return nil, &Error{Code: CodeProviderError, Cause: fmt.Errorf("discovery: %s is not an absolute http(s) URL", field)}
		}
	}
	return &doc, nil
}

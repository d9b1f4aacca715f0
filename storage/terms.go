package storage

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// TermAgreement is one agreement of a user to one of the service's terms:
// its tag, when it was agreed, and where ("form", or the provider's name
// when the provider's consent screen collected it).
type TermAgreement struct {
	Tag      string
	AgreedAt time.Time
	Source   string
}

// insertTerms records a new user's agreements in tx, with one audit row
// (terms_agreed) per source whose detail lists the tags, e.g. "kakao:
// privacy,service".
func insertTerms(ctx context.Context, tx pgx.Tx, userID, provider string, terms []TermAgreement, now time.Time) error {
	bySource := map[string][]string{}
	var sources []string
	for _, t := range terms {
		if _, err := tx.Exec(ctx,
			`INSERT INTO terms_agreements (user_id, tag, agreed_at, source, recorded_at) VALUES ($1, $2, $3, $4, $5)`,
			userID, t.Tag, t.AgreedAt, t.Source, now); err != nil {
			return err
		}
		if _, ok := bySource[t.Source]; !ok {
			sources = append(sources, t.Source)
		}
		bySource[t.Source] = append(bySource[t.Source], t.Tag)
	}
	for _, src := range sources {
		tags := bySource[src]
		slices.Sort(tags)
		if err := audit(ctx, tx, AuditEntry{At: now, Type: "terms_agreed", UserID: userID, Provider: provider,
			Detail: src + ": " + strings.Join(tags, ",")}); err != nil {
			return err
		}
	}
	return nil
}

// termTags is the tags of terms, sorted, never nil (an event's "terms").
func termTags(terms []TermAgreement) []string {
	out := make([]string, 0, len(terms))
	for _, t := range terms {
		if !slices.Contains(out, t.Tag) {
			out = append(out, t.Tag)
		}
	}
	slices.Sort(out)
	return out
}

// Terms returns every agreement of a user, oldest first (nil when none).
func (s *Store) Terms(ctx context.Context, userID string) ([]TermAgreement, error) {
	var out []TermAgreement
	err := s.retry(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx,
			`SELECT tag, agreed_at, source FROM terms_agreements WHERE user_id = $1 ORDER BY agreed_at, id`, userID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (TermAgreement, error) {
			var t TermAgreement
			err := r.Scan(&t.Tag, &t.AgreedAt, &t.Source)
			return t, err
		})
		return err
	})
	return out, err
}

package broker

import (
	"context"
	"errors"
	"net/http"

	"github.com/socialbroker/broker/providers"
)

// applyNotification does what a provider's notification asks (ctx carries
// the provider as the actor) and logs it. An unlink removes the identity
// and ends the user's sessions (the user goes with their last identity); a
// profile change updates the identity's profile; anything else changes
// nothing. A repeat finds nothing more to do.
func (s *Server) applyNotification(ctx context.Context, name, hook string, n providers.Notification) error {
	attrs := []any{"provider", name, "hook", hook, "event", n.Event, "detail", logSafe(n.Detail, 32)}
	switch n.Event {
	case providers.NotificationUnlinked:
		found, deleted, err := s.store.RemoveIdentity(ctx, name, n.Subject, s.now())
		if err != nil {
			return err
		}
		attrs = append(attrs, "known", found, "user_deleted", deleted)
	case providers.NotificationProfile:
		found, changed, err := s.store.UpdateIdentityProfile(ctx, name, n.Subject, n.Profile, n.At, s.now())
		if err != nil {
			return err
		}
		attrs = append(attrs, "known", found, "changed", changed)
	}
	s.log.InfoContext(ctx, "provider notification", attrs...)
	return nil
}

// notificationError answers a notification the provider's receiver
// refused: its mistake is 400; our failure to fetch the provider's keys is
// 503, so that the provider sends it again.
func notificationError(err error) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeTemporarilyUnavail,
			Description: "The provider's keys could not be fetched. Try again shortly.", Cause: err}
	}
	return errBadRequest(codeInvalidRequest, err.Error())
}

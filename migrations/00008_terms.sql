-- +goose Up

-- Agreements to the service's terms (signup.terms), one row per agreement:
-- a history, so that a later re-consent (a new version of a term) adds
-- rows and never overwrites what a user agreed to before. source is "form"
-- (the broker's signup form) or the provider's name (Kakao Sync).
CREATE TABLE terms_agreements (
    id          bigserial PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tag         text NOT NULL,
    agreed_at   timestamptz NOT NULL,
    source      text NOT NULL,
    recorded_at timestamptz NOT NULL
);

CREATE INDEX terms_agreements_user ON terms_agreements (user_id, agreed_at);

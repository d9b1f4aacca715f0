-- +goose Up

-- Provider grants to revoke (Kakao unlink, Naver/Google revoke) after a
-- user deleted their account or unlinked a provider: a durable outbox, so
-- a provider that fails or times out is retried later and never blocks or
-- undoes the deletion. A broker claims due rows by pushing next_attempt_at
-- forward (a lease), so several brokers never call twice at once.
CREATE TABLE revocations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider        text NOT NULL,
    subject         text NOT NULL,
    grant_enc       bytea,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL
);
CREATE INDEX revocations_next_attempt_at ON revocations (next_attempt_at);

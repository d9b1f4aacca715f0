-- +goose Up

-- Queued revocations are cancelled by (provider, subject) whenever that
-- provider account signs up or is linked again.
CREATE INDEX revocations_identity ON revocations (provider, subject);

-- Accounts managed from the command line (python -m common.accounts): an account can be
-- disabled (no login, sessions ended, pending work released) and enabled again. New
-- accounts take ids after the original ten.
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN password_changed_at timestamptz;
ALTER TABLE users ADD CONSTRAINT users_username_shape
    CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,99}$');

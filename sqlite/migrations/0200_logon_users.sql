-- Logon users: the accounts, with integer keys, and the machine↔account
-- edges, keyed by machine and account together (an edge keyed by account
-- alone keeps only the first machine of an account that logs on to many).
-- Edges carry the generation (seen_run) that lets a complete pass retire
-- what it no longer sees.
CREATE TABLE logon_users (
    id               INTEGER PRIMARY KEY,
    account_key      TEXT NOT NULL UNIQUE,    -- lower-cased domain\name
    domain           TEXT NOT NULL,
    name             TEXT NOT NULL,
    sid              TEXT NOT NULL DEFAULT '',
    is_domain_admin  INTEGER                  -- NULL: not known
) STRICT;

-- No foreign key to machines: an edge may arrive before its machine (a
-- device onboarded between the machine step and the logon-user step) and is
-- kept rather than lost.
CREATE TABLE machine_logon_users (
    machine_id       TEXT NOT NULL,
    user_id          INTEGER NOT NULL REFERENCES logon_users (id),
    first_seen       TEXT NOT NULL,
    last_seen        TEXT NOT NULL,
    logon_types      TEXT NOT NULL DEFAULT '',  -- comma-separated
    is_local_admin   INTEGER,
    is_domain_admin  INTEGER,
    is_only_network  INTEGER,
    source           TEXT NOT NULL,             -- hunting or api
    raw              TEXT NOT NULL,
    raw_hash         INTEGER NOT NULL,
    seen_run         INTEGER NOT NULL,
    synced_at        TEXT NOT NULL,
    retired_at       TEXT,
    PRIMARY KEY (machine_id, user_id)
) STRICT, WITHOUT ROWID;
-- No index on seen_run, as for machines: it is rewritten every sync.
CREATE INDEX machine_logon_users_user ON machine_logon_users (user_id);

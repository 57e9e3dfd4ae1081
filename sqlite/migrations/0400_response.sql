-- Machine actions, synced from MDE and issued by mdebridge. They are history:
-- never retired. A newer lastUpdate replaces an older one.
CREATE TABLE machine_actions (
    id                 TEXT PRIMARY KEY,        -- lower-case GUID
    type               TEXT NOT NULL,
    scope              TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL,
    machine_id         TEXT NOT NULL,
    computer_dns_name  TEXT NOT NULL DEFAULT '',
    requestor          TEXT NOT NULL DEFAULT '',
    creation_time      TEXT NOT NULL,
    last_update_time   TEXT NOT NULL,
    fields             TEXT NOT NULL,           -- the typed action (domain JSON): commands, related file, cancellation
    raw                TEXT NOT NULL,
    synced_at          TEXT NOT NULL
) STRICT;
CREATE INDEX machine_actions_machine ON machine_actions (machine_id, creation_time);
CREATE INDEX machine_actions_created ON machine_actions (creation_time);

-- Custom indicators, with generations as machines have them: a sync stamps
-- what it saw (seen_run); a push stamps synced_at, which protects it from the
-- retiring pass of a sync that started before it.
CREATE TABLE indicators (
    id                TEXT PRIMARY KEY,
    indicator_type    TEXT NOT NULL,
    indicator_value   TEXT NOT NULL,
    action            TEXT NOT NULL DEFAULT '',
    severity          TEXT NOT NULL DEFAULT '',
    title             TEXT NOT NULL DEFAULT '',
    expiration_time   TEXT NOT NULL DEFAULT '',
    created_by        TEXT NOT NULL DEFAULT '',
    creation_time     TEXT NOT NULL DEFAULT '',
    last_update_time  TEXT NOT NULL DEFAULT '',
    fields            TEXT NOT NULL,            -- the typed indicator (domain JSON)
    raw               TEXT NOT NULL,
    seen_run          INTEGER NOT NULL,
    synced_at         TEXT NOT NULL,
    retired_at        TEXT
) STRICT;
CREATE INDEX indicators_value ON indicators (indicator_value COLLATE NOCASE);

-- The audit log: append-only.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    operation    TEXT NOT NULL,
    target_id    TEXT NOT NULL DEFAULT '',
    target_name  TEXT NOT NULL DEFAULT '',
    comment      TEXT NOT NULL DEFAULT '',
    request_id   TEXT NOT NULL DEFAULT '',
    action_id    TEXT NOT NULL DEFAULT '',
    result       TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT '',
    error        TEXT NOT NULL DEFAULT '',
    details      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX audit_log_request ON audit_log (request_id);
CREATE INDEX audit_log_target ON audit_log (target_id);

-- Bulk jobs and the state of each of their targets, so that an interrupted
-- job resumes without issuing any action twice.
CREATE TABLE bulk_jobs (
    id          TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    request     TEXT NOT NULL,
    actor       TEXT NOT NULL,
    comment     TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE TABLE bulk_targets (
    job_id         TEXT NOT NULL REFERENCES bulk_jobs (id) ON DELETE CASCADE,
    machine_id     TEXT NOT NULL,
    position       INTEGER NOT NULL,
    computer_name  TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    action_id      TEXT NOT NULL DEFAULT '',
    error          TEXT NOT NULL DEFAULT '',
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (job_id, machine_id)
) STRICT, WITHOUT ROWID;

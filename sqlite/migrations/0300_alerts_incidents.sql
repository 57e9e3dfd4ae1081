-- Alerts as the incident pipeline ingests them: typed columns for filtering
-- and incidents, the state change detection compares, MDE's JSON for fidelity.
CREATE TABLE alerts (
    id                   TEXT PRIMARY KEY,
    incident_ref         INTEGER,                 -- incidents.id; NULL while no filter matched it
    mde_incident_id      INTEGER NOT NULL DEFAULT 0,
    severity             TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL DEFAULT '',
    classification       TEXT NOT NULL DEFAULT '',
    determination        TEXT NOT NULL DEFAULT '',
    assigned_to          TEXT NOT NULL DEFAULT '',
    detection_source     TEXT NOT NULL DEFAULT '',
    category             TEXT NOT NULL DEFAULT '',
    title                TEXT NOT NULL DEFAULT '',
    machine_id           TEXT NOT NULL DEFAULT '',
    computer_dns_name    TEXT NOT NULL DEFAULT '',
    rbac_group_name      TEXT NOT NULL DEFAULT '',
    alert_creation_time  TEXT NOT NULL DEFAULT '',
    last_update_time     TEXT NOT NULL,           -- the version dedupe compares (fixed width: sorts as text)
    state                TEXT NOT NULL,           -- mdebridge.AlertState as JSON, with changes made in mdebridge
    raw                  TEXT NOT NULL,           -- the alert as MDE last sent it
    ingested_at          TEXT NOT NULL,
    updated_at           TEXT NOT NULL
) STRICT;
CREATE INDEX alerts_incident ON alerts (incident_ref);
CREATE INDEX alerts_last_update ON alerts (last_update_time);
CREATE INDEX alerts_machine ON alerts (machine_id);

-- What alerts mention (hashes, IPs, URLs, hosts, accounts), lower case, for lookups.
CREATE TABLE alert_entities (
    alert_id  TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (alert_id, kind, value)
) STRICT, WITHOUT ROWID;
CREATE INDEX alert_entities_value ON alert_entities (value);

CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY,
    key               TEXT NOT NULL UNIQUE,       -- alert:<id> or mde:<incident id>
    mde_incident_id   INTEGER NOT NULL DEFAULT 0,
    title             TEXT NOT NULL DEFAULT '',
    severity          TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT '',
    classification    TEXT NOT NULL DEFAULT '',
    determination     TEXT NOT NULL DEFAULT '',
    assigned_to       TEXT NOT NULL DEFAULT '',
    alert_count       INTEGER NOT NULL DEFAULT 0,
    machines          TEXT NOT NULL DEFAULT '[]',
    categories        TEXT NOT NULL DEFAULT '[]',
    first_alert_time  TEXT NOT NULL DEFAULT '',
    last_update_time  TEXT NOT NULL DEFAULT '',
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    version           INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX incidents_updated ON incidents (updated_at);

-- The event outbox: every incident event, in order. seq comes from
-- incident_counters and never repeats, even after pruning.
CREATE TABLE incident_events (
    seq          INTEGER PRIMARY KEY,
    event_id     TEXT NOT NULL,
    incident_id  INTEGER NOT NULL,
    alert_id     TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL,
    origin       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    body         TEXT NOT NULL
) STRICT;
CREATE INDEX incident_events_incident ON incident_events (incident_id, seq);

CREATE TABLE incident_counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) STRICT;

-- How far each sink has got through the outbox.
CREATE TABLE incident_sink_cursors (
    sink        TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

-- The poller's checkpoint: one row.
CREATE TABLE incident_poll_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    watermark   TEXT NOT NULL,
    ties        INTEGER NOT NULL,
    sweep_from  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

-- Changes made in mdebridge on their way to MDE.
CREATE TABLE incident_mirror (
    id               INTEGER PRIMARY KEY,
    incident_id      INTEGER NOT NULL,
    alert_ids        TEXT NOT NULL,               -- JSON list
    update_json      TEXT NOT NULL,               -- mdebridge.AlertUpdate
    author           TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL,               -- pending, sending, done, failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    error            TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;
CREATE INDEX incident_mirror_due ON incident_mirror (state, next_attempt_at);
CREATE INDEX incident_mirror_incident ON incident_mirror (incident_id);

-- Singleton jobs (the incident pipeline) and the process that runs each.
CREATE TABLE leases (
    name          TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL
) STRICT;

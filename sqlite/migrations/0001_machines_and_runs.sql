-- Machines: typed columns for filtering, the upstream JSON for fidelity, and
-- the generation (seen_run) that lets a complete pass retire what it no longer sees.
CREATE TABLE machines (
    id                        TEXT PRIMARY KEY,
    computer_dns_name         TEXT NOT NULL DEFAULT '',
    os_platform               TEXT NOT NULL DEFAULT '',
    os_version                TEXT NOT NULL DEFAULT '',
    os_processor              TEXT NOT NULL DEFAULT '',
    os_architecture           TEXT NOT NULL DEFAULT '',
    version                   TEXT NOT NULL DEFAULT '',
    os_build                  INTEGER NOT NULL DEFAULT 0,
    health_status             TEXT NOT NULL DEFAULT '',
    onboarding_status         TEXT NOT NULL DEFAULT '',
    defender_av_status        TEXT NOT NULL DEFAULT '',
    risk_score                TEXT NOT NULL DEFAULT '',
    exposure_level            TEXT NOT NULL DEFAULT '',
    device_value              TEXT NOT NULL DEFAULT '',
    rbac_group_id             INTEGER NOT NULL DEFAULT 0,
    rbac_group_name           TEXT NOT NULL DEFAULT '',
    last_ip_address           TEXT NOT NULL DEFAULT '',
    last_external_ip_address  TEXT NOT NULL DEFAULT '',
    agent_version             TEXT NOT NULL DEFAULT '',
    is_aad_joined             INTEGER NOT NULL DEFAULT 0,
    aad_device_id             TEXT NOT NULL DEFAULT '',
    managed_by                TEXT NOT NULL DEFAULT '',
    managed_by_status         TEXT NOT NULL DEFAULT '',
    merged_into_machine_id    TEXT NOT NULL DEFAULT '',
    is_potential_duplication  INTEGER NOT NULL DEFAULT 0,
    is_excluded               INTEGER NOT NULL DEFAULT 0,
    exclusion_reason          TEXT NOT NULL DEFAULT '',
    vm_id                     TEXT NOT NULL DEFAULT '',
    vm_cloud_provider         TEXT NOT NULL DEFAULT '',
    vm_resource_id            TEXT NOT NULL DEFAULT '',
    vm_subscription_id        TEXT NOT NULL DEFAULT '',
    first_seen                TEXT NOT NULL DEFAULT '',
    last_seen                 TEXT NOT NULL DEFAULT '',
    raw                       TEXT NOT NULL,
    raw_hash                  INTEGER NOT NULL,   -- FNV-1a of raw: unchanged machines are only stamped
    seen_run                  INTEGER NOT NULL,
    synced_at                 TEXT NOT NULL,
    retired_at                TEXT
) STRICT;
-- No index on seen_run: every sync rewrites it, and the retiring UPDATE scans
-- the table once per complete pass.
CREATE INDEX machines_name ON machines (computer_dns_name COLLATE NOCASE);
CREATE INDEX machines_last_ip ON machines (last_ip_address);

CREATE TABLE machine_ips (
    machine_id  TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    ip          TEXT NOT NULL,
    mac         TEXT NOT NULL DEFAULT '',
    type        TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (machine_id, position)
) STRICT, WITHOUT ROWID;
CREATE INDEX machine_ips_ip ON machine_ips (ip);

CREATE TABLE machine_tags (
    machine_id  TEXT NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    PRIMARY KEY (machine_id, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX machine_tags_tag ON machine_tags (tag COLLATE NOCASE);

-- Sync runs and their steps. A running run holds a lease (owner, heartbeat_at)
-- so that two processes never sync the same store at once.
CREATE TABLE sync_runs (
    id            INTEGER PRIMARY KEY,
    trigger       TEXT NOT NULL,
    full          INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL,
    owner         TEXT NOT NULL DEFAULT '',
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL,
    finished_at   TEXT
) STRICT;
CREATE INDEX sync_runs_status ON sync_runs (status);

CREATE TABLE sync_steps (
    run_id        INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    items         INTEGER NOT NULL DEFAULT 0,
    retired       INTEGER NOT NULL DEFAULT 0,
    api_calls     INTEGER NOT NULL DEFAULT 0,
    calls_by_api  TEXT NOT NULL DEFAULT '{}',
    started_at    TEXT NOT NULL,
    duration_ms   INTEGER NOT NULL DEFAULT 0,
    error         TEXT NOT NULL DEFAULT '',
    checkpoint    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, name)
) STRICT;
CREATE INDEX sync_steps_name ON sync_steps (name, run_id);

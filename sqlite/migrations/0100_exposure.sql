-- Vulnerability management (TVM): the CVE catalogue, the software inventory
-- and the machine × software × CVE rows. Millions of rows, so they are
-- normalised: each row holds integer keys into small dimension tables, and
-- the row tables are WITHOUT ROWID tables keyed on the export's own unique
-- combination (a row seen twice is stored once; a machine's rows are
-- together). Full loads fill a twin table (<name>_next) and swap it in whole
-- in one transaction, building the secondary indexes then; the twin's DDL is
-- read from sqlite_schema, so these statements are its only definition.

-- Devices as the exports name them. A device may be missing from the
-- machine inventory (the export named a machine the machine sync has not
-- seen); it is kept, with the name the export gave it.
CREATE TABLE tvm_devices (
    key              INTEGER PRIMARY KEY,
    device_id        TEXT NOT NULL UNIQUE,   -- lower case
    device_name      TEXT NOT NULL DEFAULT '',
    os_platform      TEXT NOT NULL DEFAULT '',
    os_version       TEXT NOT NULL DEFAULT '',
    os_architecture  TEXT NOT NULL DEFAULT '',
    rbac_group_name  TEXT NOT NULL DEFAULT '',
    rbac_group_id    INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Product versions, with figures the loads keep.
CREATE TABLE software_versions (
    key               INTEGER PRIMARY KEY,
    vendor            TEXT NOT NULL,
    name              TEXT NOT NULL,
    version           TEXT NOT NULL,
    installations     INTEGER NOT NULL DEFAULT 0,  -- machines with it (inventory)
    exposed_machines  INTEGER NOT NULL DEFAULT 0,  -- machines with a CVE through it
    weaknesses        INTEGER NOT NULL DEFAULT 0,  -- distinct CVEs found in it
    UNIQUE (vendor, name, version)
) STRICT;

-- Products (vendor-_-name), with figures the loads keep.
CREATE TABLE software_products (
    vendor              TEXT NOT NULL,
    name                TEXT NOT NULL,
    installed_machines  INTEGER NOT NULL DEFAULT 0,
    exposed_machines    INTEGER NOT NULL DEFAULT 0,
    weaknesses          INTEGER NOT NULL DEFAULT 0,
    public_exploit      INTEGER NOT NULL DEFAULT 0,
    versions            INTEGER NOT NULL DEFAULT 0,
    eos_status          TEXT NOT NULL DEFAULT '',  -- the worst end-of-support status of its installations
    PRIMARY KEY (vendor, name)
) STRICT, WITHOUT ROWID;
CREATE INDEX software_products_name ON software_products (name);

-- CVEs: the catalogue's entry (GET /api/vulnerabilities) when it has one,
-- and what the exports say of it.
CREATE TABLE cves (
    key                   INTEGER PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,   -- upper case
    in_catalogue          INTEGER NOT NULL DEFAULT 0,
    seen_run              INTEGER NOT NULL DEFAULT 0,
    severity              TEXT NOT NULL DEFAULT '',
    cvss_v3               REAL,
    published_on          TEXT NOT NULL DEFAULT '',
    updated_on            TEXT NOT NULL DEFAULT '',
    public_exploit        INTEGER NOT NULL DEFAULT 0,
    raw                   TEXT,
    export_severity       TEXT NOT NULL DEFAULT '',
    export_cvss           REAL,
    exploitability_level  TEXT NOT NULL DEFAULT '',
    exposed_machines      INTEGER NOT NULL DEFAULT 0,  -- kept by the loads
    products              TEXT NOT NULL DEFAULT ''     -- vendor-_-name of the products it is found in, \x1f-joined
) STRICT;
CREATE INDEX cves_exposed ON cves (exposed_machines) WHERE exposed_machines > 0;

-- The security updates the exports recommend.
CREATE TABLE security_updates (
    key        INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    update_id  TEXT NOT NULL,
    url        TEXT NOT NULL,
    UNIQUE (name, update_id, url)
) STRICT;

-- One row per machine × product version × CVE (cve_key 0: a row without a
-- CVE, end-of-support software).
CREATE TABLE machine_vulnerabilities (
    device_key    INTEGER NOT NULL,
    software_key  INTEGER NOT NULL,
    cve_key       INTEGER NOT NULL,
    first_seen    INTEGER NOT NULL DEFAULT 0,  -- unix milliseconds
    last_seen     INTEGER NOT NULL DEFAULT 0,
    update_key    INTEGER NOT NULL DEFAULT 0,
    flags         INTEGER NOT NULL DEFAULT 0,  -- 1: securityUpdateAvailable given, 2: and true
    paths         TEXT,                        -- disk paths, \x1e, registry paths (each \x1f-joined); NULL: none
    row_id        TEXT,                        -- the upstream id, when it is not deviceId_vendor_name_version_cveId
    extra         TEXT,                        -- upstream fields not modelled, as a JSON object
    PRIMARY KEY (device_key, software_key, cve_key)
) STRICT, WITHOUT ROWID;
-- The only secondary index: a CVE's machines. Everything per product or
-- version is read from cve_software and the figures the loads keep, which
-- saves building a second index over millions of rows at every full load.
CREATE INDEX machine_vulnerabilities_cve ON machine_vulnerabilities (cve_key, device_key);

-- Which product versions each CVE is found in, on how many machines.
CREATE TABLE cve_software (
    software_key  INTEGER NOT NULL,
    cve_key       INTEGER NOT NULL,
    machines      INTEGER NOT NULL,
    PRIMARY KEY (software_key, cve_key)
) STRICT, WITHOUT ROWID;
CREATE INDEX cve_software_cve ON cve_software (cve_key);

-- The software inventory: one row per machine × product version.
CREATE TABLE machine_software (
    device_key    INTEGER NOT NULL,
    software_key  INTEGER NOT NULL,
    first_seen    INTEGER NOT NULL DEFAULT 0,
    weaknesses    INTEGER NOT NULL DEFAULT 0,
    eos_status    TEXT NOT NULL DEFAULT '',
    eos_date      INTEGER NOT NULL DEFAULT 0,
    paths         TEXT,
    extra         TEXT,
    PRIMARY KEY (device_key, software_key)
) STRICT, WITHOUT ROWID;
CREATE INDEX machine_software_software ON machine_software (software_key);

-- Figures the loads keep, so that status never counts millions of rows.
CREATE TABLE exposure_counts (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mdebridge/mdebridge"
)

// edge is a logon user ready to store: its account key and, once resolved,
// the account's id.
type edge struct {
	u      *mdebridge.LogonUser
	key    string
	userID int64
}

// UpsertLogonUsers stores edges seen by run runID in one transaction: the
// accounts first (getting their ids), then the edges, in key order and in
// multi-row statements; an edge whose upstream JSON has not changed is only
// stamped with the run.
func (db *DB) UpsertLogonUsers(ctx context.Context, runID int64, users []mdebridge.LogonUser) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := db.upsertLogonUsers(ctx, tx, runID, users); err != nil {
		return err
	}
	return tx.Commit()
}

func (db *DB) upsertLogonUsers(ctx context.Context, tx *sql.Tx, runID int64, users []mdebridge.LogonUser) error {
	// One edge per machine and account: the last occurrence wins, with the
	// widest span of logons of them all.
	index := map[string]int{}
	var edges []edge
	for i := range users {
		u := &users[i]
		if u.MachineID == "" || u.AccountName == "" {
			return fmt.Errorf("logon user %q of machine %q: machine and account name are required", u.ID(), u.MachineID)
		}
		k := u.AccountKey()
		ek := strings.ToLower(u.MachineID) + "\x00" + k
		if j, ok := index[ek]; ok {
			prev := edges[j].u
			merged := *u
			if !prev.FirstSeen.IsZero() && (merged.FirstSeen.IsZero() || prev.FirstSeen.Before(merged.FirstSeen)) {
				merged.FirstSeen = prev.FirstSeen
			}
			if prev.LastSeen.After(merged.LastSeen) {
				merged.LastSeen = prev.LastSeen
			}
			edges[j].u = &merged
			continue
		}
		index[ek] = len(edges)
		edges = append(edges, edge{u: u, key: k})
	}
	if len(edges) == 0 {
		return nil
	}
	ids, err := resolveAccounts(ctx, tx, edges)
	if err != nil {
		return err
	}
	for i := range edges {
		edges[i].userID = ids[edges[i].key]
	}
	slices.SortFunc(edges, func(a, b edge) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.u.MachineID), strings.ToLower(b.u.MachineID)), cmp.Compare(a.userID, b.userID))
	})
	b := newBatcher(tx)
	defer b.close()
	now := fmtTime(db.now())
	const batch = 2000
	for len(edges) > 0 {
		n := min(batch, len(edges))
		if err := upsertEdges(ctx, b, edges[:n], runID, now); err != nil {
			return err
		}
		edges = edges[n:]
	}
	return nil
}

// resolveAccounts inserts or refreshes the accounts of edges and returns
// their ids by account key.
func resolveAccounts(ctx context.Context, tx *sql.Tx, edges []edge) (map[string]int64, error) {
	seen := map[string]bool{}
	var args []any
	for _, e := range edges {
		if seen[e.key] {
			continue
		}
		seen[e.key] = true
		args = append(args, e.key, e.u.AccountDomain, e.u.AccountName, e.u.AccountSID, optBool(e.u.IsDomainAdmin))
	}
	ids := make(map[string]int64, len(seen))
	err := chunks(`INSERT INTO logon_users (account_key, domain, name, sid, is_domain_admin) VALUES `,
		` ON CONFLICT (account_key) DO UPDATE SET domain = excluded.domain, name = excluded.name,
			sid = CASE WHEN excluded.sid <> '' THEN excluded.sid ELSE sid END,
			is_domain_admin = coalesce(excluded.is_domain_admin, is_domain_admin)
		RETURNING id, account_key`, 5, args, func(q string, chunk []any) error {
			rows, err := tx.QueryContext(ctx, q, chunk...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				var k string
				if err := rows.Scan(&id, &k); err != nil {
					return err
				}
				ids[k] = id
			}
			return rows.Err()
		})
	if err != nil {
		return nil, fmt.Errorf("store logon user accounts: %w", err)
	}
	return ids, nil
}

func optBool(b *bool) any {
	if b == nil {
		return nil
	}
	return boolInt(*b)
}

func upsertEdges(ctx context.Context, b *batcher, edges []edge, runID int64, now string) error {
	type key struct {
		machine string
		user    int64
	}
	// The stored edges of the batch's machines (edges come sorted by
	// machine, so each machine's edges are few and in one batch or two).
	var machines []any
	for i, e := range edges {
		if m := strings.ToLower(e.u.MachineID); i == 0 || m != machines[len(machines)-1] {
			machines = append(machines, m)
		}
	}
	existing := map[key]int64{}
	err := b.query(ctx, `SELECT machine_id, user_id, raw_hash FROM machine_logon_users WHERE machine_id IN `, 1, machines,
		func(rows *sql.Rows) error {
			var k key
			var h int64
			if err := rows.Scan(&k.machine, &k.user, &h); err != nil {
				return err
			}
			existing[k] = h
			return nil
		})
	if err != nil {
		return fmt.Errorf("look up logon users: %w", err)
	}
	var same, changed []any
	for _, e := range edges {
		u := e.u
		m := strings.ToLower(u.MachineID)
		h := rawHash(u.Raw)
		if old, ok := existing[key{m, e.userID}]; ok && old == h {
			same = append(same, m, e.userID)
			continue
		}
		raw := string(u.Raw)
		if raw == "" {
			raw = "{}"
		}
		changed = append(changed, m, e.userID, fmtTime(u.FirstSeen), fmtTime(u.LastSeen), strings.Join(u.LogonTypes, ","),
			optBool(u.IsLocalAdmin), optBool(u.IsDomainAdmin), optBool(u.OnlyNetwork()), u.Source, raw, h, runID, now)
	}
	run := strconv.FormatInt(runID, 10)
	if err := b.exec(ctx, `UPDATE machine_logon_users SET seen_run = `+run+`, synced_at = '`+now+`', retired_at = NULL WHERE (machine_id, user_id) IN (VALUES `,
		`)`, 2, same); err != nil {
		return fmt.Errorf("stamp unchanged logon users: %w", err)
	}
	// An edge keeps the earliest first and the latest last logon ever seen:
	// hunting sees 30 days, so its first logon is often later than the
	// one already stored.
	if err := b.exec(ctx, `INSERT INTO machine_logon_users (machine_id, user_id, first_seen, last_seen, logon_types,
			is_local_admin, is_domain_admin, is_only_network, source, raw, raw_hash, seen_run, synced_at) VALUES `,
		` ON CONFLICT (machine_id, user_id) DO UPDATE SET
			first_seen = CASE WHEN first_seen = '' OR (excluded.first_seen <> '' AND excluded.first_seen < first_seen) THEN excluded.first_seen ELSE first_seen END,
			last_seen = CASE WHEN excluded.last_seen > last_seen THEN excluded.last_seen ELSE last_seen END,
			logon_types = excluded.logon_types, is_local_admin = coalesce(excluded.is_local_admin, is_local_admin),
			is_domain_admin = coalesce(excluded.is_domain_admin, is_domain_admin), is_only_network = excluded.is_only_network,
			source = excluded.source, raw = excluded.raw, raw_hash = excluded.raw_hash, seen_run = excluded.seen_run,
			synced_at = excluded.synced_at, retired_at = NULL`, 13, changed); err != nil {
		return fmt.Errorf("store logon users: %w", err)
	}
	return nil
}

// RetireLogonUsersNotSeen retires every live edge run runID did not see.
func (db *DB) RetireLogonUsersNotSeen(ctx context.Context, runID int64) (int, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE machine_logon_users SET retired_at = ? WHERE retired_at IS NULL AND seen_run < ?`, fmtTime(db.now()), runID)
	if err != nil {
		return 0, fmt.Errorf("retire logon users: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), tx.Commit()
}

// ReplaceMachineLogonUsers stores one machine's complete list and retires
// its edges not in it, in one transaction.
func (db *DB) ReplaceMachineLogonUsers(ctx context.Context, runID int64, machineID string, users []mdebridge.LogonUser) (int, error) {
	for _, u := range users {
		if !strings.EqualFold(u.MachineID, machineID) {
			return 0, fmt.Errorf("logon user %s belongs to machine %s, not %s", u.ID(), u.MachineID, machineID)
		}
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if err := db.upsertLogonUsers(ctx, tx, runID, users); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE machine_logon_users SET retired_at = ? WHERE machine_id = ? AND retired_at IS NULL AND seen_run < ?`,
		fmtTime(db.now()), strings.ToLower(machineID), runID)
	if err != nil {
		return 0, fmt.Errorf("retire logon users of %s: %w", machineID, err)
	}
	n, _ := res.RowsAffected()
	return int(n), tx.Commit()
}

// MachineLogonUsers returns a machine's live users, latest logon first.
func (db *DB) MachineLogonUsers(ctx context.Context, machineID string) ([]mdebridge.LogonUser, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT e.machine_id, u.name, u.domain, u.sid, e.first_seen, e.last_seen, e.logon_types,
			e.is_local_admin, coalesce(e.is_domain_admin, u.is_domain_admin), e.is_only_network, e.source, e.raw, e.synced_at, e.retired_at
		FROM machine_logon_users e JOIN logon_users u ON u.id = e.user_id
		WHERE e.machine_id = ? AND e.retired_at IS NULL
		ORDER BY e.last_seen DESC, u.account_key`, strings.ToLower(machineID))
	if err != nil {
		return nil, fmt.Errorf("query logon users: %w", err)
	}
	defer rows.Close()
	out := []mdebridge.LogonUser{}
	for rows.Next() {
		var u mdebridge.LogonUser
		var first, last, types, raw, synced string
		var local, domainAdmin, network sql.NullInt64
		var retired sql.NullString
		if err := rows.Scan(&u.MachineID, &u.AccountName, &u.AccountDomain, &u.AccountSID, &first, &last, &types,
			&local, &domainAdmin, &network, &u.Source, &raw, &synced, &retired); err != nil {
			return nil, err
		}
		u.FirstSeen, u.LastSeen, u.SyncedAt = parseTime(first), parseTime(last), parseTime(synced)
		if types != "" {
			u.LogonTypes = strings.Split(types, ",")
		}
		u.IsLocalAdmin, u.IsDomainAdmin, u.IsOnlyNetworkUser = boolPtr(local), boolPtr(domainAdmin), boolPtr(network)
		u.Raw = []byte(raw)
		if retired.Valid {
			t := parseTime(retired.String)
			u.RetiredAt = &t
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func boolPtr(n sql.NullInt64) *bool {
	if !n.Valid {
		return nil
	}
	b := n.Int64 != 0
	return &b
}

// LiveMachineIDs returns up to limit live machine ids greater than after.
func (db *DB) LiveMachineIDs(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id FROM machines WHERE retired_at IS NULL AND id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list machine ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

var _ mdebridge.LogonUserStore = (*DB)(nil)

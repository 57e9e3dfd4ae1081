// Package sqlite is mdebridge's default store: one SQLite file (modernc's pure
// Go driver, so the binary needs no cgo), WAL mode, one writer connection and
// a pool of readers. Migrations are embedded SQL applied at Open.
//
// Every store method is one transaction. Nothing here calls out to a network.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// timeLayout is fixed-width so that stored timestamps sort as text.
const timeLayout = "2006-01-02T15:04:05.0000000Z"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s)
	}
	return t
}

// DB is the store.
type DB struct {
	write *sql.DB
	read  *sql.DB
	path  string
	now   func() time.Time
}

// Options tune Open.
type Options struct {
	// Now is the store's clock for synced_at and retired_at; nil means time.Now.
	Now func() time.Time
}

// Open opens (creating if needed) the SQLite file at path and applies the
// migrations it lacks.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: path is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dsn := func(extra string) string {
		// page_size only takes effect on a new file, before WAL is set.
		q := "_pragma=page_size(16384)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)" + extra
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q
	}
	// The writer gets a 32 MB page cache: a 100,000-machine upsert touches
	// every page of the machine and IP indexes, and the default 2 MB cache
	// turns that into reads from disk.
	w, err := sql.Open("sqlite", dsn("&_txlock=immediate&_pragma=cache_size(-32768)&_pragma=temp_store(memory)"))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn("&_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(2, runtime.NumCPU()))
	db := &DB{write: w, read: r, path: path, now: opts.Now}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// Close closes the store.
func (db *DB) Close() error {
	return errors.Join(db.read.Close(), db.write.Close())
}

// Path is the file the store lives in.
func (db *DB) Path() string { return db.path }

// migrate applies, in name order, every embedded migration not yet recorded.
// Each runs in its own immediate transaction, so two processes opening the
// same file at once apply each migration once.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.applyMigration(ctx, name); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, name string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, name, fmtTime(db.now())); err != nil {
		return err
	}
	return tx.Commit()
}

// likeEscape escapes LIKE wildcards for use with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mdebridge/mdebridge"
)

// The exposure steps: the CVE catalogue, the vulnerability rows and the
// software inventory. Their cost in API calls does not grow with the number
// of machines: the rows come from the export APIs (one call, then files
// from blob storage), and between full exports from the delta API.

// ExposureOptions tune the exposure steps.
type ExposureOptions struct {
	// FullEvery is how often, at most, the vulnerability rows are exported
	// in full; in between the delta API brings the changes (default 24h).
	FullEvery time.Duration
	// Via is how exports are fetched: "files" (default) or "json".
	Via string
	// DeltaLimit is the most changes applied as a delta; a bigger delta is
	// cheaper as a full export (default 250,000).
	DeltaLimit int
	// Now is the steps' clock (default time.Now).
	Now func() time.Time
}

func (o ExposureOptions) withDefaults() ExposureOptions {
	if o.FullEvery <= 0 {
		o.FullEvery = 24 * time.Hour
	}
	if o.Via == "" {
		o.Via = "files"
	}
	if o.DeltaLimit <= 0 {
		o.DeltaLimit = 250_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// loadBatch is how many rows go to the store at a time: big enough that
// per-transaction costs vanish, small enough to bound memory.
const loadBatch = 20_000

// deltaOverlap is how far before its last change the delta API is asked
// again: applying a change twice changes nothing, missing one would.
const deltaOverlap = time.Hour

// maxDeltaAge is the oldest sinceTime the delta API accepts, with a margin.
const maxDeltaAge = 13 * 24 * time.Hour

// CVECatalogueStep syncs MDE's CVE catalogue (GET /api/vulnerabilities): a
// complete listing at most every FullEvery, and in between only the entries
// updated since the newest one stored.
type CVECatalogueStep struct {
	Source  mdebridge.ExposureSource
	Store   mdebridge.ExposureStore
	Options ExposureOptions
}

func (CVECatalogueStep) Name() string    { return "cves" }
func (CVECatalogueStep) Needs() []string { return nil }

// Run lists the catalogue (or its changes) into the store.
func (s CVECatalogueStep) Run(ctx context.Context, r *StepRun) (err error) {
	defer func() { err = optional(err) }()
	o := s.Options.withDefaults()
	now := o.Now()
	var last time.Time
	if r.Checkpoint != "" {
		last, _ = time.Parse(time.RFC3339, r.Checkpoint)
	}
	full := r.Full || last.IsZero() || now.Sub(last) >= o.FullEvery
	var since time.Time
	if !full {
		if since, err = s.Store.LatestCatalogueUpdate(ctx); err != nil {
			return err
		}
		full = since.IsZero()
	}
	err = s.Source.ListVulnerabilities(ctx, since, func(vs []mdebridge.Vulnerability) error {
		if err := s.Store.UpsertVulnerabilities(ctx, r.RunID, vs); err != nil {
			return fmt.Errorf("store vulnerabilities: %w", err)
		}
		r.AddItems(len(vs))
		return nil
	})
	if err != nil {
		return err
	}
	if full {
		n, err := s.Store.RetireVulnerabilitiesNotSeen(ctx, r.RunID)
		if err != nil {
			return fmt.Errorf("retire vulnerabilities: %w", err)
		}
		r.SetRetired(n)
		r.SaveCheckpoint(now.UTC().Format(time.RFC3339))
	} else {
		r.SaveCheckpoint(r.Checkpoint)
	}
	return nil
}

// vulnCheckpoint is the vulnerability step's resumption state.
type vulnCheckpoint struct {
	// FullAt is when the last full export was stored (our clock).
	FullAt time.Time `json:"fullAt"`
	// Snapshot is the service's generatedTime of that export.
	Snapshot time.Time `json:"snapshot,omitzero"`
	// Since is how far the stored rows are known to be current: the
	// snapshot, then the newest change applied.
	Since time.Time `json:"since"`
}

// VulnerabilitiesStep syncs the machine × software × CVE rows: a full
// export (via files, or JSON pages when files are refused) at most every
// FullEvery, swapped in whole; in between the delta API's changes.
type VulnerabilitiesStep struct {
	Source  mdebridge.ExposureSource
	Store   mdebridge.ExposureStore
	Options ExposureOptions
}

func (VulnerabilitiesStep) Name() string    { return "vulnerabilities" }
func (VulnerabilitiesStep) Needs() []string { return nil }

// Run brings the vulnerability rows up to date.
func (s VulnerabilitiesStep) Run(ctx context.Context, r *StepRun) (err error) {
	defer func() { err = optional(err) }()
	o := s.Options.withDefaults()
	now := o.Now()
	var cp vulnCheckpoint
	if r.Checkpoint != "" {
		if err := json.Unmarshal([]byte(r.Checkpoint), &cp); err != nil {
			r.Logger.Warn("unreadable checkpoint; exporting in full", "err", err)
			cp = vulnCheckpoint{}
		}
	}
	if !r.Full && !cp.FullAt.IsZero() && now.Sub(cp.FullAt) < o.FullEvery && now.Sub(cp.Since) < maxDeltaAge {
		done, err := s.delta(ctx, r, o, &cp)
		if err != nil || done {
			return err
		}
		r.Logger.Info("the delta is bigger than a full export is worth; exporting in full", "limit", o.DeltaLimit)
	}
	return s.full(ctx, r, o, now)
}

// delta applies the changes since the checkpoint. done is false when they
// were too many to be worth it.
func (s VulnerabilitiesStep) delta(ctx context.Context, r *StepRun, o ExposureOptions, cp *vulnCheckpoint) (done bool, err error) {
	var changes []mdebridge.MachineVulnerability
	errTooMany := errors.New("too many changes")
	err = s.Source.VulnerabilityChanges(ctx, cp.Since.Add(-deltaOverlap), func(rows []mdebridge.MachineVulnerability) error {
		if len(changes)+len(rows) > o.DeltaLimit {
			return errTooMany
		}
		changes = append(changes, rows...)
		return nil
	})
	if errors.Is(err, errTooMany) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	counts, err := s.Store.ApplyVulnerabilityChanges(ctx, r.RunID, changes)
	if err != nil {
		return false, fmt.Errorf("apply %d changes: %w", len(changes), err)
	}
	for _, c := range changes {
		if c.EventTimestamp.After(cp.Since) {
			cp.Since = c.EventTimestamp
		}
	}
	r.AddItems(counts.Added + counts.Updated)
	r.SetRetired(counts.Removed)
	r.Logger.Info("vulnerability changes applied", "changes", len(changes), "added", counts.Added, "removed", counts.Removed, "updated", counts.Updated)
	return true, s.save(r, *cp)
}

func (s VulnerabilitiesStep) save(r *StepRun, cp vulnCheckpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	r.SaveCheckpoint(string(b))
	return nil
}

// full replaces every row with a full export.
func (s VulnerabilitiesStep) full(ctx context.Context, r *StepRun, o ExposureOptions, now time.Time) error {
	info, n, err := fullLoad(ctx, r, o, "vulnerability", s.Store.BeginVulnerabilityLoad, s.Source.ExportVulnerabilities, mdebridge.ExportOptions{})
	if err != nil {
		return err
	}
	cp := vulnCheckpoint{FullAt: now, Snapshot: info.GeneratedTime, Since: info.GeneratedTime}
	if cp.Since.IsZero() {
		// A JSON export does not say when its snapshot was made; the
		// service regenerates them every 6 hours.
		cp.Since = now.Add(-6 * time.Hour)
	}
	r.Logger.Info("vulnerability export stored", "rows", n, "via", info.Via, "files", info.Files, "generated", info.GeneratedTime)
	return s.save(r, cp)
}

// SoftwareStep syncs the software inventory through its export, skipping
// the download when the service's snapshot is the one already stored.
type SoftwareStep struct {
	Source  mdebridge.ExposureSource
	Store   mdebridge.ExposureStore
	Options ExposureOptions
}

func (SoftwareStep) Name() string    { return "software" }
func (SoftwareStep) Needs() []string { return nil }

// Run brings the software inventory up to date.
func (s SoftwareStep) Run(ctx context.Context, r *StepRun) (err error) {
	defer func() { err = optional(err) }()
	o := s.Options.withDefaults()
	var unless time.Time
	if !r.Full && r.Checkpoint != "" {
		unless, _ = time.Parse(time.RFC3339Nano, r.Checkpoint)
	}
	info, n, err := fullLoad(ctx, r, o, "software", s.Store.BeginSoftwareLoad, s.Source.ExportSoftware, mdebridge.ExportOptions{Unless: unless})
	if err != nil {
		return err
	}
	if info.Skipped {
		r.Logger.Info("software inventory unchanged since its last export", "generated", info.GeneratedTime)
		r.SaveCheckpoint(r.Checkpoint)
		return nil
	}
	r.Logger.Info("software inventory stored", "rows", n, "via", info.Via, "files", info.Files)
	if !info.GeneratedTime.IsZero() {
		r.SaveCheckpoint(info.GeneratedTime.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// fullLoad runs one full export into a store load: via files, falling
// back to JSON pages when the service refuses files, starting over once if
// the snapshot changes under it. Whatever fails, the stored rows stay as
// they were.
func fullLoad[T any](ctx context.Context, r *StepRun, o ExposureOptions, what string,
	begin func(context.Context, int64) (mdebridge.RowLoad[T], error),
	export func(context.Context, mdebridge.ExportOptions, func([]T) error) (mdebridge.ExportInfo, error),
	eo mdebridge.ExportOptions) (mdebridge.ExportInfo, int, error) {
	eo.Via = o.Via
	for attempt := 1; ; attempt++ {
		info, n, err := loadOnce(ctx, r, begin, export, eo)
		switch {
		case err == nil:
			return info, n, nil
		case errors.Is(err, mdebridge.ErrExportUnavailable) && eo.Via == "files":
			r.Logger.Warn("the "+what+" export via files was refused; using the JSON export", "err", err)
			eo.Via = "json"
		case errors.Is(err, mdebridge.ErrExportChanged) && attempt == 1:
			r.Logger.Warn("the "+what+" export changed while it was downloaded; starting over", "err", err)
		default:
			return info, 0, err
		}
	}
}

func loadOnce[T any](ctx context.Context, r *StepRun,
	begin func(context.Context, int64) (mdebridge.RowLoad[T], error),
	export func(context.Context, mdebridge.ExportOptions, func([]T) error) (mdebridge.ExportInfo, error),
	eo mdebridge.ExportOptions) (mdebridge.ExportInfo, int, error) {
	// The load begins with the first rows, so that an export skipped as
	// already stored costs the store nothing.
	var load mdebridge.RowLoad[T]
	defer func() {
		if load != nil {
			load.Abort(ctx) // a no-op after Commit
		}
	}()
	batch := make([]T, 0, loadBatch)
	delivered := 0
	flush := func() error {
		if load == nil {
			var err error
			if load, err = begin(ctx, r.RunID); err != nil {
				return err
			}
		}
		if len(batch) == 0 {
			return nil
		}
		if err := load.Add(ctx, batch); err != nil {
			return fmt.Errorf("store rows: %w", err)
		}
		delivered += len(batch)
		r.AddItems(len(batch))
		batch = batch[:0]
		return nil
	}
	info, err := export(ctx, eo, func(rows []T) error {
		batch = append(batch, rows...)
		if len(batch) >= loadBatch {
			return flush()
		}
		return nil
	})
	if err == nil && !info.Skipped {
		err = flush() // the last rows; for an empty export, the empty load
	}
	if err != nil {
		r.AddItems(-delivered)
		return info, 0, err
	}
	if info.Skipped {
		return info, 0, nil
	}
	start := time.Now()
	n, err := load.Commit(ctx)
	r.Logger.Debug("load committed", "rows", n, "seconds", time.Since(start).Seconds())
	if err != nil {
		r.AddItems(-delivered)
		return info, 0, fmt.Errorf("commit: %w", err)
	}
	// Rows handed twice (a file fetched again) count once.
	r.AddItems(n - delivered)
	return info, n, nil
}

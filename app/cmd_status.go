package app

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mdebridge/mdebridge"
)

// statusReport is what `status -o json` prints.
type statusReport struct {
	Store   string                 `json:"store"`
	Counts  mdebridge.Counts       `json:"counts"`
	LastRun *mdebridge.SyncRun     `json:"lastRun"`
	Steps   []mdebridge.StepResult `json:"steps"`
}

func cmdStatus(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	out := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, "status [-o table|json]"); !ok {
		return code
	}
	if err := checkFormat("status", *out, "table", "json"); err != nil {
		return usageError(env, "status", "%v", err)
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "status", err)
	}
	defer a.Close()
	rep := statusReport{Store: store.Path()}
	if rep.Counts, err = store.Counts(ctx); err != nil {
		return fail(env, "status", err)
	}
	if rep.Steps, err = store.LastStepResults(ctx); err != nil {
		return fail(env, "status", err)
	}
	runs, err := store.LastRuns(ctx, 1)
	if err != nil {
		return fail(env, "status", err)
	}
	if len(runs) > 0 {
		rep.LastRun = &runs[0]
	}
	if *out == "json" {
		writeJSON(env.Stdout, rep)
		return ExitOK
	}
	w := env.Stdout
	fmt.Fprintf(w, "Store: %s\n", rep.Store)
	if rep.LastRun == nil {
		fmt.Fprintln(w, "No sync has run yet: run 'mdebridge sync'.")
	} else {
		r := rep.LastRun
		fmt.Fprintf(w, "Last sync: %d %s, started %s (%s ago)\n", r.ID, r.Status, r.StartedAt.Local().Format(time.DateTime),
			fmtDuration(time.Since(r.StartedAt)))
	}
	fmt.Fprintln(w)
	width := 18
	for k := range rep.Counts {
		width = max(width, len(k))
	}
	for _, k := range slices.Sorted(maps.Keys(rep.Counts)) {
		fmt.Fprintf(w, "%-*s %s\n", width, k, thousands(rep.Counts[k]))
	}
	if len(rep.Steps) > 0 {
		fmt.Fprintln(w)
		writeTable(w, []column[mdebridge.StepResult]{
			{"STEP", func(s mdebridge.StepResult) string { return s.Name }},
			{"LAST STATUS", func(s mdebridge.StepResult) string { return string(s.Status) }},
			{"AT", func(s mdebridge.StepResult) string { return s.StartedAt.Local().Format(time.DateTime) }},
			{"ITEMS", func(s mdebridge.StepResult) string { return fmt.Sprint(s.Items) }},
			{"API CALLS", func(s mdebridge.StepResult) string { return fmt.Sprint(s.APICalls) }},
			{"ERROR", func(s mdebridge.StepResult) string { return s.Error }},
		}, rep.Steps)
	}
	return ExitOK
}

package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/syncer"
)

func cmdSync(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	full := fs.Bool("full", false, "ignore checkpoints and deltas: fetch everything")
	out := fs.String("o", "table", "output: table or json")
	var only stringList
	fs.Var(&only, "step", "run only this step (repeatable)")
	if ok, code := parseFlags(fs, env, g, args, "sync [--full] [--step NAME] [-o table|json]"); !ok {
		return code
	}
	if err := checkFormat("sync", *out, "table", "json"); err != nil {
		return usageError(env, "sync", "%v", err)
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "sync", err)
	}
	defer a.Close()
	run, err := runSync(ctx, env, a, syncer.RunOptions{Trigger: "cli", Full: *full, Only: only})
	if err != nil {
		return fail(env, "sync", err)
	}
	if *out == "json" {
		writeJSON(env.Stdout, run)
	} else {
		printRun(env.Stdout, run)
	}
	return runExitCode(run)
}

// runSync checks the credentials first (so a wrong secret is one clear
// line, not a failed step), then runs the engine with progress on a terminal.
func runSync(ctx context.Context, env *Env, a *App, o syncer.RunOptions) (*mdebridge.SyncRun, error) {
	tokens, err := a.Tokens()
	if err != nil {
		return nil, err
	}
	if _, err := tokens.Token(ctx); err != nil {
		return nil, err
	}
	engine, err := a.Engine(ctx)
	if err != nil {
		return nil, err
	}
	p := newProgress(env)
	o.Progress = p.update
	run, err := engine.Run(ctx, o)
	p.finish()
	return run, err
}

func runExitCode(run *mdebridge.SyncRun) int {
	switch run.Status {
	case mdebridge.StatusSucceeded:
		return ExitOK
	case mdebridge.StatusPartial:
		return ExitPartial
	}
	return ExitFailure
}

func printRun(w io.Writer, run *mdebridge.SyncRun) {
	writeTable(w, []column[mdebridge.StepResult]{
		{"STEP", func(s mdebridge.StepResult) string { return s.Name }},
		{"STATUS", func(s mdebridge.StepResult) string { return string(s.Status) }},
		{"ITEMS", func(s mdebridge.StepResult) string { return fmt.Sprint(s.Items) }},
		{"RETIRED", func(s mdebridge.StepResult) string { return fmt.Sprint(s.Retired) }},
		{"API CALLS", func(s mdebridge.StepResult) string { return fmt.Sprint(s.APICalls) }},
		{"DURATION", func(s mdebridge.StepResult) string {
			return fmtDuration(time.Duration(s.DurationMS) * time.Millisecond)
		}},
	}, run.Steps)
	var took time.Duration
	if run.FinishedAt != nil {
		took = run.FinishedAt.Sub(run.StartedAt)
	}
	fmt.Fprintf(w, "\nSync %d %s in %s.\n", run.ID, run.Status, fmtDuration(took))
	for _, s := range run.Steps {
		if s.Error != "" && s.Status != mdebridge.StatusSkipped {
			fmt.Fprintf(w, "%s: %s\n", s.Name, s.Error)
		}
	}
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// progress shows what a sync is doing on an interactive terminal, and
// nothing otherwise.
type progress struct {
	w       io.Writer
	on      bool
	mu      sync.Mutex
	last    time.Time
	pending bool
}

func newProgress(env *Env) *progress {
	return &progress{w: env.Stderr, on: env.terminal(env.Stderr)}
}

func (p *progress) update(e syncer.Progress) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Status {
	case mdebridge.StatusRunning:
		if time.Since(p.last) < 100*time.Millisecond && e.Items != 0 {
			return
		}
		p.last = time.Now()
		fmt.Fprintf(p.w, "\r\033[K%s: %s items…", e.Step, thousands(e.Items))
		p.pending = true
	default:
		mark := map[mdebridge.Status]string{mdebridge.StatusSucceeded: "done", mdebridge.StatusFailed: "FAILED",
			mdebridge.StatusSkipped: "skipped", mdebridge.StatusInterrupted: "interrupted",
			mdebridge.StatusNotPermitted: "not permitted"}[e.Status]
		fmt.Fprintf(p.w, "\r\033[K%s: %s items, %s\n", e.Step, thousands(e.Items), mark)
		p.pending = false
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on && p.pending {
		fmt.Fprintln(p.w)
	}
}

// thousands formats n with thousands separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/indicators"
)

func cmdIndicators(ctx context.Context, env *Env, g *globals, args []string) int {
	const help = `Usage: mdebridge indicators list [--type T] [--action A] [--severity S] [--value TEXT] [--include-retired] [-o table|json|jsonl|csv]
       mdebridge indicators add <value> --action A --title T --comment TEXT [--type T] [--severity S] [--expires 30d|DATE] [...]
       mdebridge indicators update <id|value> --comment TEXT [--action A] [--severity S] [--title T] [--expires …] [...]
       mdebridge indicators delete <id|value>... --comment TEXT [--yes]
       mdebridge indicators import <file|-> --comment TEXT [--format csv|json|stix] [--atomic] [--dry-run] [-o table|json]`
	submit := func(v string) func(context.Context, *Env, *globals, []string) int {
		return func(ctx context.Context, env *Env, g *globals, args []string) int {
			return indicatorsSubmit(ctx, env, g, v, args)
		}
	}
	return subcommand(ctx, env, g, "indicators", args, help,
		verb{"list", indicatorsList}, verb{"add", submit("add")}, verb{"update", submit("update")},
		verb{"delete", indicatorsDelete}, verb{"import", indicatorsImport})
}

var indicatorColumns = []column[mdebridge.Indicator]{
	{"ID", func(in mdebridge.Indicator) string { return in.ID }},
	{"TYPE", func(in mdebridge.Indicator) string { return in.IndicatorType }},
	{"VALUE", func(in mdebridge.Indicator) string { return in.IndicatorValue }},
	{"ACTION", func(in mdebridge.Indicator) string { return in.Action }},
	{"SEVERITY", func(in mdebridge.Indicator) string { return in.Severity }},
	{"EXPIRES", func(in mdebridge.Indicator) string { return fmtTime(in.ExpirationTime) }},
	{"TITLE", func(in mdebridge.Indicator) string { return in.Title }},
	{"CREATED BY", func(in mdebridge.Indicator) string { return in.CreatedByDisplayName }},
}

func indicatorsList(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("indicators list", flag.ContinueOnError)
	var f mdebridge.IndicatorFilter
	fs.StringVar(&f.Type, "type", "", "FileSha1, FileSha256, FileMd5, CertificateThumbprint, IpAddress, DomainName or Url")
	fs.StringVar(&f.Action, "action", "", "Warn, Block, Audit, Alert, AlertAndBlock, BlockAndRemediate or Allowed")
	fs.StringVar(&f.Severity, "severity", "", "Informational, Low, Medium or High")
	fs.StringVar(&f.Value, "value", "", "value contains")
	fs.BoolVar(&f.IncludeRetired, "include-retired", false, "include indicators a sync no longer saw (deleted in MDE)")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many (0: all)")
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	if ok, code := parseFlags(fs, env, g, args, "indicators list [filters] [-o table|json|jsonl|csv]"); !ok {
		return code
	}
	if err := checkFormat("indicators list", *out); err != nil {
		return usageError(env, "indicators list", "%v", err)
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "indicators list", err)
	}
	defer a.Close()
	list, total, err := store.FindIndicators(ctx, f)
	if err != nil {
		return fail(env, "indicators list", err)
	}
	err = writeList(env, *out, "indicators", list, total, indicatorColumns, func(in mdebridge.Indicator) json.RawMessage { return in.Raw })
	if err != nil {
		return fail(env, "indicators list", err)
	}
	return ExitOK
}

// parseExpiry reads --expires: a duration from now (90m, 72h, 30d) or a
// date (2027-12-31, RFC 3339).
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if d, ok := parseDays(s); ok {
		return now.Add(d).UTC().Truncate(time.Second), nil
	}
	for _, l := range []string{time.RFC3339, "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--expires %q is not a duration (72h, 30d) or a date (2027-12-31)", s)
}

// parseDays reads a Go duration or a whole number of days ("30d").
func parseDays(s string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 {
			return time.Duration(days) * 24 * time.Hour, true
		}
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= 0
}

type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// indicatorsSubmit is add (a new indicator) and update (change the given
// fields of one the store knows; MDE's POST upserts by type and value).
func indicatorsSubmit(ctx context.Context, env *Env, g *globals, verb string, args []string) int {
	name := "indicators " + verb
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var in mdebridge.Indicator
	fs.StringVar(&in.IndicatorType, "type", "", "indicator type (default: detected from the value)")
	fs.StringVar(&in.Action, "action", "", "Warn, Block, Audit, Alert, AlertAndBlock, BlockAndRemediate or Allowed (default: indicators.default_action)")
	fs.StringVar(&in.Title, "title", "", "the alert title (default: the type and value)")
	fs.StringVar(&in.Description, "description", "", "description (default: the title)")
	fs.StringVar(&in.Severity, "severity", "", "Informational, Low, Medium or High")
	fs.StringVar(&in.RecommendedActions, "recommended-actions", "", "what to do when it fires")
	fs.StringVar(&in.Application, "application", "", "the application it concerns (kept from the first submission)")
	fs.StringVar(&in.EducateURL, "educate-url", "", "a page shown to users on Warn and Block")
	fs.BoolVar(&in.GenerateAlert, "generate-alert", false, "raise an alert when it matches (implied by Audit)")
	var groups stringsFlag
	fs.Var(&groups, "group", "device group it applies to (repeatable; default all)")
	expires := fs.String("expires", "", "when it expires: 72h, 30d or a date (default: indicators.default_expiration from now)")
	comment := fs.String("comment", "", "why (required; kept in the audit log)")
	dryRun := fs.Bool("dry-run", false, "check and show the change; send nothing")
	out := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, name+" <value> --comment TEXT [options]"); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(env, name, "name one indicator value")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, name, err)
	}
	defer a.Close()
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, name, err)
	}
	if *expires != "" {
		if in.ExpirationTime, err = parseExpiry(*expires, time.Now()); err != nil {
			return usageError(env, name, "%v", err)
		}
	}
	in.RBACGroupNames = groups
	if verb == "update" {
		store, err := a.Store(ctx)
		if err != nil {
			return fail(env, name, err)
		}
		old, err := store.FindIndicator(ctx, fs.Arg(0))
		if err != nil {
			return fail(env, name, err)
		}
		in = mergeIndicator(*old, in, set)
	} else {
		in.IndicatorValue = fs.Arg(0)
	}
	rep, err := svc.ImportIndicators(ctx, mdebridge.IndicatorImport{Indicators: []mdebridge.Indicator{in}, Comment: *comment,
		Actor: a.actor(env), DryRun: *dryRun, Operation: "indicators." + verb})
	if code, done := importFailed(env, name, rep, err); done {
		return code
	}
	if *out == "json" {
		// MDE's own object when it was sent, else the report.
		store, err := a.Store(ctx)
		var got *mdebridge.Indicator
		if err == nil && len(rep.Results) == 1 && !rep.Results[0].Failed {
			got, err = store.FindIndicator(ctx, rep.Results[0].ID)
		}
		if got != nil && err == nil {
			writeRaw(env.Stdout, got.Raw)
		} else {
			writeJSON(env.Stdout, rep)
		}
	} else {
		printImport(env, rep)
	}
	return importExit(rep)
}

// mergeIndicator applies the flags that were set to a stored indicator.
func mergeIndicator(old, in mdebridge.Indicator, set map[string]bool) mdebridge.Indicator {
	out := old
	for flagName, apply := range map[string]func(){
		"type": func() { out.IndicatorType = in.IndicatorType }, "action": func() { out.Action = in.Action },
		"title": func() { out.Title = in.Title }, "description": func() { out.Description = in.Description },
		"severity": func() { out.Severity = in.Severity }, "recommended-actions": func() { out.RecommendedActions = in.RecommendedActions },
		"educate-url": func() { out.EducateURL = in.EducateURL }, "generate-alert": func() { out.GenerateAlert = in.GenerateAlert },
		"group": func() { out.RBACGroupNames = in.RBACGroupNames }, "expires": func() { out.ExpirationTime = in.ExpirationTime },
	} {
		if set[flagName] {
			apply()
		}
	}
	return out
}

func indicatorsDelete(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("indicators delete", flag.ContinueOnError)
	comment := fs.String("comment", "", "why (required; kept in the audit log)")
	yes := fs.Bool("yes", false, "do not ask for confirmation on a terminal")
	if ok, code := parseFlags(fs, env, g, args, "indicators delete <id|value>... --comment TEXT [--yes]"); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(env, "indicators delete", "name the indicators: ids or values")
	}
	if !*yes && env.terminal(env.Stderr) {
		fmt.Fprintf(env.Stderr, "delete %d indicator(s) from MDE: %s. Continue? [y/N] ", fs.NArg(), strings.Join(fs.Args(), ", "))
		line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(env.Stderr, "Nothing was sent.")
			return ExitFailure
		}
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "indicators delete", err)
	}
	defer a.Close()
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, "indicators delete", err)
	}
	ids, err := svc.DeleteIndicators(ctx, fs.Args(), *comment, a.actor(env))
	var ue *mdebridge.InputError
	if errors.As(err, &ue) {
		return usageError(env, "indicators delete", "%s", ue.Msg)
	}
	if err != nil {
		return fail(env, "indicators delete", err)
	}
	fmt.Fprintf(env.Stdout, "Deleted %d indicator(s): %s\n", len(ids), strings.Join(ids, ", "))
	return ExitOK
}

func indicatorsImport(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("indicators import", flag.ContinueOnError)
	format := fs.String("format", "", "csv, json or stix (default: from the file's name and content)")
	atomic := fs.Bool("atomic", false, "import nothing when any entry has a problem")
	dryRun := fs.Bool("dry-run", false, "check the file and show the difference with the store; send nothing")
	comment := fs.String("comment", "", "why (required; kept in the audit log)")
	var d mdebridge.IndicatorDefaults
	fs.StringVar(&d.Action, "action", "", "action for entries without one (default: indicators.default_action)")
	fs.StringVar(&d.Severity, "severity", "", "severity for entries without one (default: indicators.default_severity)")
	expires := fs.String("expires", "", "expiry for entries without one, from now: 72h, 30d (default: indicators.default_expiration)")
	out := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, "indicators import <file|-> --comment TEXT [--format csv|json|stix] [--atomic] [--dry-run] [-o table|json]"); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(env, "indicators import", "name one file (or - for standard input)")
	}
	if err := checkFormat("indicators import", *out, "table", "json"); err != nil {
		return usageError(env, "indicators import", "%v", err)
	}
	if *expires != "" {
		dur, ok := parseDays(*expires)
		if !ok {
			return usageError(env, "indicators import", "--expires %q is not a duration such as 72h or 30d", *expires)
		}
		d.Expiration = dur
	}
	var r io.Reader = env.Stdin
	name := fs.Arg(0)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fail(env, "indicators import", err)
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReader(r)
	if *format == "" {
		head, _ := br.Peek(4096)
		*format = indicators.DetectFormat(name, bytes.Clone(head))
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "indicators import", err)
	}
	defer a.Close()
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, "indicators import", err)
	}
	rep, err := svc.ImportIndicatorFile(ctx, br, *format, mdebridge.IndicatorImport{Comment: *comment, Actor: a.actor(env),
		Atomic: *atomic, DryRun: *dryRun, Defaults: d})
	if code, done := importFailed(env, "indicators import", rep, err); done {
		return code
	}
	if *out == "json" {
		writeJSON(env.Stdout, rep)
	} else {
		printImport(env, rep)
	}
	return importExit(rep)
}

// importFailed handles an import that failed as a whole.
func importFailed(env *Env, name string, rep *mdebridge.IndicatorImportReport, err error) (int, bool) {
	var ue *mdebridge.InputError
	switch {
	case errors.As(err, &ue):
		return usageError(env, name, "%s", ue.Msg), true
	case err != nil && rep != nil:
		printImport(env, rep)
		return fail(env, name, err), true
	case err != nil:
		return fail(env, name, err), true
	}
	return 0, false
}

// importExit is 0 when everything read was sent and taken, 3 when some of
// it was, 1 when none was.
func importExit(rep *mdebridge.IndicatorImportReport) int {
	switch {
	case rep.Aborted != "":
		return ExitFailure
	case rep.DryRun:
		if len(rep.Problems) > 0 {
			return ExitPartial
		}
		return ExitOK
	case rep.Imported == 0:
		return ExitFailure
	case len(rep.Problems) > 0 || rep.Failed > 0:
		return ExitPartial
	}
	return ExitOK
}

func printImport(env *Env, rep *mdebridge.IndicatorImportReport) {
	w := env.Stdout
	fmt.Fprintf(w, "Read %d entries: %d valid, %d with problems, %d duplicates.\n", rep.Entries, rep.Valid, len(rep.Problems), rep.Duplicates)
	fmt.Fprintf(w, "Against the store: %d new, %d changed, %d unchanged.\n", rep.New, rep.Changed, rep.Unchanged)
	switch {
	case rep.Aborted != "":
		fmt.Fprintf(w, "Nothing sent: %s.\n", rep.Aborted)
	case rep.DryRun:
		fmt.Fprintln(w, "Dry run: nothing sent.")
	default:
		fmt.Fprintf(w, "Sent in %d call(s): %d taken, %d refused (request %s).\n", rep.Calls, rep.Imported, rep.Failed, rep.RequestID)
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(w, "\nProblems:")
		writeTable(w, []column[mdebridge.IndicatorProblem]{
			{"LINE", func(p mdebridge.IndicatorProblem) string { return strconv.Itoa(p.Line) }},
			{"VALUE", func(p mdebridge.IndicatorProblem) string { return p.Value }},
			{"PROBLEM", func(p mdebridge.IndicatorProblem) string { return p.Message }},
		}, rep.Problems)
	}
	var refused []mdebridge.IndicatorResult
	for _, r := range rep.Results {
		if r.Failed {
			refused = append(refused, r)
		}
	}
	if len(refused) > 0 {
		fmt.Fprintln(w, "\nRefused by MDE:")
		writeTable(w, []column[mdebridge.IndicatorResult]{
			{"VALUE", func(r mdebridge.IndicatorResult) string { return r.Value }},
			{"REASON", func(r mdebridge.IndicatorResult) string { return r.Reason }},
		}, refused)
	}
}

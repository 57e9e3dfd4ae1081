package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/response"
)

// The response commands: isolate, unisolate, scan, collect, restrict,
// unrestrict, quarantine-file, offboard, live-response, tag, investigate.
// Each takes machines (ids, computer names, IP addresses) or --tag/--group,
// a required --comment, and --wait, --dry-run, --yes, -o table|json.

func respondCommand(op string) func(context.Context, *Env, *globals, []string) int {
	return func(ctx context.Context, env *Env, g *globals, args []string) int {
		return cmdRespond(ctx, env, g, op, args)
	}
}

// lrCommands collects live response commands from several flags in the
// order they are given on the command line.
type lrCommands struct{ list []mdebridge.LiveResponseSpec }

type lrFlag struct {
	cmds *lrCommands
	typ  string
}

func (f lrFlag) String() string { return "" }

func (f lrFlag) Set(v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return errors.New("empty")
	}
	spec := mdebridge.LiveResponseSpec{Type: f.typ}
	switch f.typ {
	case "RunScript":
		name, args, _ := strings.Cut(v, " ")
		spec.Params = []mdebridge.LiveResponseKV{{Key: "ScriptName", Value: name}}
		if args = strings.TrimSpace(args); args != "" {
			spec.Params = append(spec.Params, mdebridge.LiveResponseKV{Key: "Args", Value: args})
		}
	case "GetFile":
		spec.Params = []mdebridge.LiveResponseKV{{Key: "Path", Value: v}}
	case "PutFile":
		spec.Params = []mdebridge.LiveResponseKV{{Key: "FileName", Value: v}}
	}
	f.cmds.list = append(f.cmds.list, spec)
	return nil
}

func cmdRespond(ctx context.Context, env *Env, g *globals, name string, args []string) int {
	op, err := mdebridge.LookupOperation(name)
	if err != nil {
		return usageError(env, name, "%v", err)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	req := mdebridge.ActionRequest{Operation: name}
	fs.StringVar(&req.Comment, "comment", "", "why (required): sent to MDE and kept in the audit log")
	fs.StringVar(&req.Tag, "tag", "", "act on every synced machine with this tag")
	fs.StringVar(&req.Group, "group", "", "act on every synced machine of this device group (name or id)")
	at := fs.String("at", "", "for an IP address: when the machine had it (RFC 3339; default now)")
	fs.BoolVar(&req.DryRun, "dry-run", false, "resolve the machines and show what would be done; send nothing")
	yes := fs.Bool("yes", false, "do not ask for confirmation on a terminal")
	out := fs.String("o", "table", "output: table or json (MDE's own objects)")
	fs.IntVar(&req.Concurrency, "concurrency", 0, "bulk: calls in flight (default: response.concurrency)")
	if op.ActionType != "" {
		fs.BoolVar(&req.Wait, "wait", false, "poll each action until it ends (Succeeded, Failed, TimeOut or Cancelled)")
		fs.DurationVar(&req.Timeout, "timeout", 0, "how long --wait waits (default: response.wait_timeout); the action goes on in MDE")
	}
	var download *bool
	var downloadDir *string
	cmds := &lrCommands{}
	var tagAdd, tagRemove *string
	switch name {
	case mdebridge.OpIsolate:
		fs.StringVar(&req.IsolationType, "type", "full", "isolation: full, selective (Windows 10/11: Outlook, Teams, Skype keep working) or unmanaged")
	case mdebridge.OpScan:
		fs.StringVar(&req.ScanType, "type", "quick", "scan: quick or full")
	case mdebridge.OpQuarantineFile:
		fs.StringVar(&req.Sha1, "sha1", "", "SHA-1 of the file to stop and quarantine (required)")
	case mdebridge.OpLiveResponse:
		fs.Var(lrFlag{cmds, "RunScript"}, "run-script", "run a library script: 'NAME [ARGS]' (repeatable; commands run in the order given)")
		fs.Var(lrFlag{cmds, "GetFile"}, "get-file", "collect a file from the machine: PATH (repeatable)")
		fs.Var(lrFlag{cmds, "PutFile"}, "put-file", "put a library file on the machine: NAME (repeatable)")
	case mdebridge.OpTag:
		tagAdd = fs.String("add", "", "tag to add")
		tagRemove = fs.String("remove", "", "tag to remove")
	}
	if name == mdebridge.OpCollect || name == mdebridge.OpLiveResponse {
		download = fs.Bool("download", false, "with --wait: save the package or results, with their SHA-256")
		downloadDir = fs.String("download-dir", "", "where --download saves (default: response.download_dir)")
	}
	synopsis := name + " <id|name|IP>... --comment TEXT [--wait] [--dry-run] [--yes] [-o table|json]"
	if ok, code := parseFlags(fs, env, g, args, synopsis); !ok {
		return code
	}
	if err := checkFormat(name, *out, "table", "json"); err != nil {
		return usageError(env, name, "%v", err)
	}
	req.Targets = fs.Args()
	req.Commands = cmds.list
	if tagAdd != nil {
		switch {
		case *tagAdd != "" && *tagRemove != "", *tagAdd == "" && *tagRemove == "":
			return usageError(env, name, "say --add TAG or --remove TAG")
		case *tagAdd != "":
			req.TagValue = *tagAdd
		default:
			req.TagValue, req.TagRemove = *tagRemove, true
		}
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usageError(env, name, "--at %q is not an RFC 3339 time such as 2026-11-20T08:00:00Z", *at)
		}
		req.At = t
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, name, err)
	}
	defer a.Close()
	if download != nil && *download {
		req.DownloadDir = a.Config.Response.DownloadDir
		if *downloadDir != "" {
			req.DownloadDir = *downloadDir
		}
	}
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, name, err)
	}
	req.Actor = a.actor(env)
	bulk := req.Tag != "" || req.Group != "" || len(req.Targets) > 1
	if !req.DryRun && !*yes && (op.Disruptive || bulk) && env.terminal(env.Stderr) {
		if code, ok := confirm(ctx, env, svc, req); !ok {
			return code
		}
	}
	p := newBulkProgress(env, name)
	rep, err := svc.Respond(ctx, req, p.update)
	p.finish()
	if rep != nil {
		printReport(env, rep, *out)
	}
	return respondExit(env, name, rep, err)
}

// confirm asks on the terminal before a disruptive or bulk request.
func confirm(ctx context.Context, env *Env, svc *response.Service, req mdebridge.ActionRequest) (int, bool) {
	targets, err := svc.Resolve(ctx, req)
	if err != nil {
		return respondExit(env, req.Operation, nil, err), false
	}
	var names []string
	for _, t := range targets[:min(len(targets), 5)] {
		names = append(names, t.Name)
	}
	list := strings.Join(names, ", ")
	if len(targets) > 5 {
		list += fmt.Sprintf(" and %d more", len(targets)-5)
	}
	fmt.Fprintf(env.Stderr, "%s %d machine(s): %s. Continue? [y/N] ", req.Operation, len(targets), list)
	line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return 0, true
	}
	fmt.Fprintln(env.Stderr, "Nothing was sent.")
	return ExitFailure, false
}

// respondExit words an error and picks the exit code: 0 when every target
// succeeded, 3 when some did, 1 when none did, 2 for a bad request.
func respondExit(env *Env, name string, rep *mdebridge.ActionReport, err error) int {
	var ue *mdebridge.InputError
	if errors.As(err, &ue) {
		return usageError(env, name, "%s", ue.Msg)
	}
	var ie *response.InterruptedError
	if errors.As(err, &ie) {
		fmt.Fprintf(env.Stderr, "mdebridge %s: %s\nResume with: mdebridge actions resume %s (nothing is sent twice)\n", name, describe(ie.Err), ie.JobID)
		if rep != nil && rep.Failed() < len(rep.Outcomes) {
			return ExitPartial
		}
		return ExitFailure
	}
	if err != nil {
		code := fail(env, name, err)
		if rep != nil && len(rep.Outcomes) > 1 && rep.Failed() < len(rep.Outcomes) {
			return ExitPartial
		}
		return code
	}
	failed, running := rep.Failed(), 0
	for _, o := range rep.Outcomes {
		if o.StillRunning {
			running++
		}
	}
	if running > 0 {
		fmt.Fprintf(env.Stderr, "mdebridge %s: %d action(s) still running when the wait ended; they go on in MDE (see 'mdebridge actions show ID')\n", name, running)
	}
	switch {
	case failed+running == 0:
		return ExitOK
	case failed+running < len(rep.Outcomes):
		return ExitPartial
	}
	return ExitFailure
}

// printReport prints what a request did: MDE's objects with -o json, a
// table otherwise; downloads and hints go to stderr.
func printReport(env *Env, rep *mdebridge.ActionReport, format string) {
	if format == "json" {
		var items []json.RawMessage
		for _, o := range rep.Outcomes {
			items = append(items, outcomeJSON(o))
		}
		if len(items) == 1 {
			writeRaw(env.Stdout, items[0])
		} else {
			writeRawArray(env.Stdout, items)
		}
	} else if len(rep.Outcomes) <= 50 {
		writeTable(env.Stdout, outcomeColumns(rep.Operation), rep.Outcomes)
	}
	counts := map[string]int{}
	for _, o := range rep.Outcomes {
		counts[o.Result]++
		for _, d := range o.Downloads {
			fmt.Fprintf(env.Stderr, "saved %s (%s, %d bytes, sha256 %s)\n", d.Path, d.What, d.Bytes, d.SHA256)
		}
	}
	if rep.DryRun {
		fmt.Fprintf(env.Stderr, "dry run: %d machine(s) resolved, nothing was sent\n", len(rep.Outcomes))
		return
	}
	if len(rep.Outcomes) > 1 || rep.JobID != "" {
		var parts []string
		for _, r := range []string{mdebridge.AuditCreated, mdebridge.AuditJoined, mdebridge.AuditDone, mdebridge.AuditFailed, ""} {
			if counts[r] > 0 {
				label := r
				if r == "" {
					label = "not sent"
				}
				parts = append(parts, fmt.Sprintf("%d %s", counts[r], label))
			}
		}
		fmt.Fprintf(env.Stderr, "%s: %d machine(s): %s (request %s)\n", rep.Operation, len(rep.Outcomes), strings.Join(parts, ", "), rep.RequestID)
	}
}

// outcomeJSON is an outcome as JSON: MDE's own object when there is one.
func outcomeJSON(o mdebridge.ActionOutcome) json.RawMessage {
	switch {
	case o.Action != nil && len(o.Action.Raw) > 0:
		return o.Action.Raw
	case o.Machine != nil && len(o.Machine.Raw) > 0:
		return o.Machine.Raw
	case o.Investigation != nil && len(o.Investigation.Raw) > 0:
		return o.Investigation.Raw
	}
	b, _ := json.Marshal(o)
	return b
}

func outcomeColumns(op string) []column[mdebridge.ActionOutcome] {
	cols := []column[mdebridge.ActionOutcome]{
		{"MACHINE", func(o mdebridge.ActionOutcome) string { return o.ComputerName }},
		{"RESULT", func(o mdebridge.ActionOutcome) string { return o.Result }},
	}
	switch op {
	case mdebridge.OpTag:
		return append(cols, column[mdebridge.ActionOutcome]{"TAGS", func(o mdebridge.ActionOutcome) string {
			if o.Machine == nil {
				return o.Error
			}
			return strings.Join(o.Machine.MachineTags, ",")
		}})
	case mdebridge.OpInvestigate:
		return append(cols,
			column[mdebridge.ActionOutcome]{"INVESTIGATION", func(o mdebridge.ActionOutcome) string {
				if o.Investigation == nil {
					return o.Error
				}
				return o.Investigation.ID
			}},
			column[mdebridge.ActionOutcome]{"STATE", func(o mdebridge.ActionOutcome) string {
				if o.Investigation == nil {
					return ""
				}
				return o.Investigation.State
			}})
	}
	return append(cols,
		column[mdebridge.ActionOutcome]{"STATUS", func(o mdebridge.ActionOutcome) string {
			switch {
			case o.Action == nil:
				return o.Error
			case o.StillRunning:
				return o.Action.Status + " (still running)"
			}
			return o.Action.Status
		}},
		column[mdebridge.ActionOutcome]{"ACTION", func(o mdebridge.ActionOutcome) string {
			if o.Action == nil {
				return ""
			}
			return o.Action.ID
		}},
		column[mdebridge.ActionOutcome]{"MACHINE ID", func(o mdebridge.ActionOutcome) string { return o.MachineID }},
	)
}

// bulkProgress shows a bulk job's progress on an interactive terminal.
type bulkProgress struct {
	w     io.Writer
	on    bool
	name  string
	mu    sync.Mutex
	last  time.Time
	shown bool
}

func newBulkProgress(env *Env, name string) *bulkProgress {
	return &bulkProgress{w: env.Stderr, on: env.terminal(env.Stderr), name: name}
}

func (p *bulkProgress) update(b mdebridge.BulkProgress) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 100*time.Millisecond && b.Done != b.Total {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\033[K%s: %s/%s machines answered, %d failed (job %s)", p.name, thousands(b.Done), thousands(b.Total), b.Failed, b.JobID)
	p.shown = true
}

func (p *bulkProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

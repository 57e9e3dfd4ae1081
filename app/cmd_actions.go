package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

func cmdActions(ctx context.Context, env *Env, g *globals, args []string) int {
	const help = `Usage: mdebridge actions list [--machine X] [--type T] [--status S] [--since 24h] [--limit N] [-o table|json|jsonl|csv]
       mdebridge actions show <action id> [-o table|json]
       mdebridge actions cancel <action id> --comment TEXT
       mdebridge actions jobs [-o table|json]
       mdebridge actions resume <job id>`
	return subcommand(ctx, env, g, "actions", args, help,
		verb{"list", actionsList}, verb{"show", actionsShow}, verb{"cancel", actionsCancel}, verb{"jobs", actionsJobs}, verb{"resume", actionsResume})
}

var actionColumns = []column[mdebridge.MachineAction]{
	{"CREATED", func(a mdebridge.MachineAction) string { return fmtTime(a.CreationTime) }},
	{"TYPE", func(a mdebridge.MachineAction) string { return a.Type }},
	{"SCOPE", func(a mdebridge.MachineAction) string { return a.Scope }},
	{"STATUS", func(a mdebridge.MachineAction) string { return a.Status }},
	{"MACHINE", func(a mdebridge.MachineAction) string { return a.ComputerDNSName }},
	{"REQUESTOR", func(a mdebridge.MachineAction) string { return a.Requestor }},
	{"COMMENT", func(a mdebridge.MachineAction) string { return a.RequestorComment }},
	{"ID", func(a mdebridge.MachineAction) string { return a.ID }},
}

// actionsList lists machine actions from the store: those synced and those
// mdebridge issued.
func actionsList(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("actions list", flag.ContinueOnError)
	var f mdebridge.ActionFilter
	machine := fs.String("machine", "", "machine id, computer name or IP")
	fs.StringVar(&f.Type, "type", "", "action type, e.g. Isolate, RunAntiVirusScan, LiveResponse")
	fs.StringVar(&f.Status, "status", "", "Pending, InProgress, Succeeded, Failed, TimeOut or Cancelled")
	since := fs.Duration("since", 0, "created within this long, e.g. 24h")
	fs.IntVar(&f.Limit, "limit", 100, "at most this many, newest first (0: all)")
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	if ok, code := parseFlags(fs, env, g, args, "actions list [filters] [-o table|json|jsonl|csv]"); !ok {
		return code
	}
	if err := checkFormat("actions list", *out); err != nil {
		return usageError(env, "actions list", "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(env, "actions list", "unexpected argument %q", fs.Arg(0))
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "actions list", err)
	}
	defer a.Close()
	if *machine != "" {
		m, err := store.FindMachine(ctx, *machine)
		if err != nil {
			return fail(env, "actions list", err)
		}
		f.MachineID = m.ID
	}
	if *since > 0 {
		f.Since = time.Now().Add(-*since)
	}
	list, total, err := store.FindMachineActions(ctx, f)
	if err != nil {
		return fail(env, "actions list", err)
	}
	err = writeList(env, *out, "actions", list, total, actionColumns, func(a mdebridge.MachineAction) json.RawMessage { return a.Raw })
	if err != nil {
		return fail(env, "actions list", err)
	}
	return ExitOK
}

// actionsShow shows one action as MDE has it now (and keeps it in the store).
func actionsShow(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("actions show", flag.ContinueOnError)
	key, out, ok, code := parseShow(fs, env, g, args, "actions show <action id> [-o table|json]", "name one action by its id")
	if !ok {
		return code
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "actions show", err)
	}
	defer a.Close()
	client, err := a.MDE()
	if err != nil {
		return fail(env, "actions show", err)
	}
	act, err := client.GetMachineAction(ctx, key)
	if err != nil {
		return fail(env, "actions show", err)
	}
	if store, err := a.Store(ctx); err == nil {
		store.UpsertMachineActions(ctx, []mdebridge.MachineAction{*act})
	}
	if out == "json" {
		if err := writeRaw(env.Stdout, act.Raw); err != nil {
			return fail(env, fs.Name(), err)
		}
		return ExitOK
	}
	printAction(env.Stdout, act)
	return ExitOK
}

func printAction(w io.Writer, a *mdebridge.MachineAction) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-18s %s\n", k+":", v)
		}
	}
	row("ID", a.ID)
	row("Type", strings.TrimSpace(a.Type+" "+a.Scope))
	row("Status", a.Status)
	row("Machine", strings.TrimSpace(a.ComputerDNSName+" ("+a.MachineID+")"))
	row("Requestor", a.Requestor)
	row("Comment", a.RequestorComment)
	row("Created", fmtTime(a.CreationTime))
	row("Last update", fmtTime(a.LastUpdateTime))
	if a.Status == mdebridge.ActionStatusCancelled {
		row("Cancelled by", a.CancellationRequestor)
		row("Cancel comment", a.CancellationComment)
	}
	if a.ErrorHResult != 0 {
		row("Error HResult", fmt.Sprint(a.ErrorHResult))
	}
	if a.RelatedFileInfo != nil {
		row("File", a.RelatedFileInfo.FileIdentifierType+" "+a.RelatedFileInfo.FileIdentifier)
	}
	if len(a.Commands) > 0 {
		fmt.Fprintln(w, "\nCommands:")
		writeTable(w, []column[mdebridge.LiveResponseCommand]{
			{"#", func(c mdebridge.LiveResponseCommand) string { return fmt.Sprint(c.Index) }},
			{"TYPE", func(c mdebridge.LiveResponseCommand) string { return c.Command.Type }},
			{"PARAMS", func(c mdebridge.LiveResponseCommand) string {
				var ps []string
				for _, p := range c.Command.Params {
					ps = append(ps, p.Key+"="+p.Value)
				}
				return strings.Join(ps, " ")
			}},
			{"STATUS", func(c mdebridge.LiveResponseCommand) string { return c.CommandStatus }},
			{"ERRORS", func(c mdebridge.LiveResponseCommand) string { return strings.Join(c.Errors, "; ") }},
		}, a.Commands)
	}
}

func actionsCancel(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("actions cancel", flag.ContinueOnError)
	comment := fs.String("comment", "", "why (required)")
	out := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, "actions cancel <action id> --comment TEXT [-o table|json]"); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(env, "actions cancel", "name one action by its id")
	}
	if strings.TrimSpace(*comment) == "" {
		return usageError(env, "actions cancel", "a comment is required: say why the action is cancelled (--comment)")
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "actions cancel", err)
	}
	defer a.Close()
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, "actions cancel", err)
	}
	act, err := svc.CancelAction(ctx, fs.Arg(0), *comment, a.actor(env))
	if err != nil {
		return fail(env, "actions cancel", err)
	}
	if *out == "json" {
		if err := writeRaw(env.Stdout, act.Raw); err != nil {
			return fail(env, fs.Name(), err)
		}
		return ExitOK
	}
	printAction(env.Stdout, act)
	return ExitOK
}

func actionsJobs(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("actions jobs", flag.ContinueOnError)
	out := fs.String("o", "table", "output: table or json")
	limit := fs.Int("limit", 20, "at most this many, newest first")
	if ok, code := parseFlags(fs, env, g, args, "actions jobs [--limit N] [-o table|json]"); !ok {
		return code
	}
	if err := checkFormat("actions jobs", *out, "table", "json"); err != nil {
		return usageError(env, "actions jobs", "%v", err)
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "actions jobs", err)
	}
	defer a.Close()
	jobs, err := store.ListBulkJobs(ctx, *limit)
	if err != nil {
		return fail(env, "actions jobs", err)
	}
	if *out == "json" {
		if jobs == nil {
			jobs = []mdebridge.BulkJob{}
		}
		writeJSON(env.Stdout, jobs)
		return ExitOK
	}
	writeTable(env.Stdout, []column[mdebridge.BulkJob]{
		{"JOB", func(j mdebridge.BulkJob) string { return j.ID }},
		{"CREATED", func(j mdebridge.BulkJob) string { return fmtTime(j.CreatedAt) }},
		{"OPERATION", func(j mdebridge.BulkJob) string { return j.Operation }},
		{"STATUS", func(j mdebridge.BulkJob) string { return j.Status }},
		{"ISSUED", func(j mdebridge.BulkJob) string { return fmt.Sprint(j.Counts[mdebridge.TargetIssued]) }},
		{"FAILED", func(j mdebridge.BulkJob) string { return fmt.Sprint(j.Counts[mdebridge.TargetFailed]) }},
		{"LEFT", func(j mdebridge.BulkJob) string {
			return fmt.Sprint(j.Counts[mdebridge.TargetPending] + j.Counts[mdebridge.TargetSending])
		}},
		{"ACTOR", func(j mdebridge.BulkJob) string { return j.Actor }},
		{"COMMENT", func(j mdebridge.BulkJob) string { return j.Comment }},
	}, jobs)
	return ExitOK
}

func actionsResume(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("actions resume", flag.ContinueOnError)
	out := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, "actions resume <job id> [-o table|json]"); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(env, "actions resume", "name one bulk job by its id (see 'mdebridge actions jobs')")
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "actions resume", err)
	}
	defer a.Close()
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, "actions resume", err)
	}
	p := newBulkProgress(env, "resume")
	rep, err := svc.Resume(ctx, fs.Arg(0), a.actor(env), p.update)
	p.finish()
	if rep != nil {
		printReport(env, rep, *out)
	}
	return respondExit(env, "actions resume", rep, err)
}

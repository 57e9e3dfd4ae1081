package app

import (
	"context"
	"flag"
	"time"

	"github.com/mdebridge/mdebridge"
)

// cmdAudit lists the audit log: every response request, who made it, when,
// on what, why, and what came of it.
func cmdAudit(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	var f mdebridge.AuditFilter
	fs.StringVar(&f.RequestID, "request", "", "one request (or bulk job) id")
	fs.StringVar(&f.TargetID, "target", "", "machine id, or indicator id")
	fs.StringVar(&f.Actor, "actor", "", "who acted")
	fs.StringVar(&f.Operation, "operation", "", "e.g. isolate, scan, indicators.import, actions.cancel")
	since := fs.Duration("since", 0, "within this long, e.g. 24h")
	fs.IntVar(&f.Limit, "limit", 100, "at most this many, newest first (0: all)")
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	if ok, code := parseFlags(fs, env, g, args, "audit [--request ID] [--target ID] [--actor A] [--operation OP] [--since 24h] [-o table|json|jsonl|csv]"); !ok {
		return code
	}
	if err := checkFormat("audit", *out); err != nil {
		return usageError(env, "audit", "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(env, "audit", "unexpected argument %q", fs.Arg(0))
	}
	if *since > 0 {
		f.Since = time.Now().Add(-*since)
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "audit", err)
	}
	defer a.Close()
	es, err := store.FindAudit(ctx, f)
	if err != nil {
		return fail(env, "audit", err)
	}
	cols := []column[mdebridge.AuditEntry]{
		{"AT", func(e mdebridge.AuditEntry) string { return e.At.UTC().Format(time.RFC3339) }},
		{"ACTOR", func(e mdebridge.AuditEntry) string { return e.Actor }},
		{"OPERATION", func(e mdebridge.AuditEntry) string { return e.Operation }},
		{"TARGET", func(e mdebridge.AuditEntry) string {
			if e.TargetName != "" {
				return e.TargetName
			}
			return e.TargetID
		}},
		{"RESULT", func(e mdebridge.AuditEntry) string { return e.Result }},
		{"STATUS", func(e mdebridge.AuditEntry) string { return e.Status }},
		{"COMMENT", func(e mdebridge.AuditEntry) string { return e.Comment }},
		{"REQUEST", func(e mdebridge.AuditEntry) string { return e.RequestID }},
		{"ACTION", func(e mdebridge.AuditEntry) string { return e.ActionID }},
		{"ERROR", func(e mdebridge.AuditEntry) string { return e.Error }},
	}
	err = writeList(env, *out, "entries", es, len(es), cols, marshalled)
	if err != nil {
		return fail(env, "audit", err)
	}
	return ExitOK
}

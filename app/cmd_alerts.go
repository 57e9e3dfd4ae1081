package app

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mdebridge/mdebridge"
)

func cmdAlerts(ctx context.Context, env *Env, g *globals, args []string) int {
	return subcommand(ctx, env, g, "alerts", args, "Usage: mdebridge alerts list [filters] [-o table|json|jsonl|csv]\n"+
		"       mdebridge alerts show <alert id> [-o table|json]\n"+
		"       mdebridge alerts update <alert id> [--status S] [--assign WHO] [--classification C] [--determination D] [--comment TEXT]",
		verb{"list", alertsList}, verb{"show", alertsShow}, verb{"update", alertsUpdate})
}

// sinceFlag reads --since: RFC 3339, or a duration back from now.
func sinceFlag(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q is neither a duration (24h) nor an RFC 3339 time", v)
	}
	return t, nil
}

func alertsList(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("alerts list", flag.ContinueOnError)
	var f mdebridge.AlertFilter
	fs.StringVar(&f.Severity, "severity", "", "Informational, Low, Medium or High")
	fs.StringVar(&f.Status, "status", "", "New, InProgress or Resolved")
	fs.StringVar(&f.DetectionSource, "source", "", "detection source, e.g. WindowsDefenderAv, WindowsDefenderAtp, CustomerTI")
	fs.StringVar(&f.Category, "category", "", "category, e.g. Malware, Execution")
	fs.StringVar(&f.RBACGroup, "group", "", "device (RBAC) group name")
	fs.StringVar(&f.Machine, "machine", "", "machine id or computer name")
	fs.Int64Var(&f.Incident, "incident", 0, "the alerts of this incident")
	fs.StringVar(&f.Entity, "entity", "", "alerts whose evidence mentions this file hash, IP, URL, host or account")
	since := fs.String("since", "", "updated since: a duration back from now (24h) or an RFC 3339 time")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many (0: all)")
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	if ok, code := parseFlags(fs, env, g, args, "alerts list [filters] [-o table|json|jsonl|csv]"); !ok {
		return code
	}
	if err := checkFormat("alerts list", *out); err != nil {
		return usageError(env, "alerts list", "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(env, "alerts list", "unexpected argument %q", fs.Arg(0))
	}
	var err error
	if f.UpdatedSince, err = sinceFlag(*since); err != nil {
		return usageError(env, "alerts list", "%v", err)
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "alerts list", err)
	}
	defer a.Close()
	as, total, err := store.FindAlerts(ctx, f)
	if err != nil {
		return fail(env, "alerts list", err)
	}
	err = writeList(env, *out, "alerts", as, total, alertColumns, func(a mdebridge.Alert) json.RawMessage { return a.Raw })
	if err != nil {
		return fail(env, "alerts list", err)
	}
	return ExitOK
}

var alertColumns = []column[mdebridge.Alert]{
	{"UPDATED", func(a mdebridge.Alert) string { return fmtTime(a.LastUpdateTime) }},
	{"SEVERITY", func(a mdebridge.Alert) string { return a.Severity }},
	{"STATUS", func(a mdebridge.Alert) string { return a.Status }},
	{"TITLE", func(a mdebridge.Alert) string { return a.Title }},
	{"MACHINE", func(a mdebridge.Alert) string { return cmp.Or(a.ComputerDNSName, a.MachineID) }},
	{"CATEGORY", func(a mdebridge.Alert) string { return a.Category }},
	{"SOURCE", func(a mdebridge.Alert) string { return a.DetectionSource }},
	{"ASSIGNED TO", func(a mdebridge.Alert) string { return a.AssignedTo }},
	{"INCIDENT", func(a mdebridge.Alert) string { return formatRef(a.IncidentRef) }},
	{"ID", func(a mdebridge.Alert) string { return a.ID }},
}

func formatRef(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func alertsShow(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("alerts show", flag.ContinueOnError)
	key, out, ok, code := parseShow(fs, env, g, args, "alerts show <alert id> [-o table|json]", "name one alert by its id")
	if !ok {
		return code
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "alerts show", err)
	}
	defer a.Close()
	al, err := store.GetAlert(ctx, key)
	if err != nil {
		return fail(env, "alerts show", err)
	}
	if out == "json" {
		if err := writeRaw(env.Stdout, al.Raw); err != nil {
			return fail(env, "alerts show", err)
		}
		return ExitOK
	}
	printAlert(env.Stdout, al)
	return ExitOK
}

func printAlert(w io.Writer, a *mdebridge.Alert) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-20s %s\n", k+":", v)
		}
	}
	row("Title", a.Title)
	row("ID", a.ID)
	row("Severity", a.Severity)
	row("Status", a.Status)
	row("Classification", strings.TrimSpace(a.Classification+" "+a.Determination))
	row("Assigned to", a.AssignedTo)
	row("Category", a.Category)
	row("Detection source", a.DetectionSource)
	row("Threat", strings.TrimSpace(a.ThreatFamilyName+" "+a.ThreatName))
	row("MITRE techniques", strings.Join(a.MitreTechniques, ", "))
	row("Machine", strings.TrimSpace(a.ComputerDNSName+" ("+a.MachineID+")"))
	row("Device group", a.RBACGroupName)
	if a.RelatedUser != nil {
		row("User", a.RelatedUser.DomainName+`\`+a.RelatedUser.UserName)
	}
	row("MDE incident", formatRef(a.IncidentID))
	row("Incident", formatRef(a.IncidentRef))
	row("Created", fmtTime(a.AlertCreationTime))
	row("Events", strings.Trim(fmtTime(a.FirstEventTime)+" – "+fmtTime(a.LastEventTime), " –"))
	row("Last updated", fmtTime(a.LastUpdateTime))
	row("Resolved", fmtTime(a.ResolvedTime))
	if a.Description != "" {
		fmt.Fprintf(w, "\n%s\n", a.Description)
	}
	if len(a.Evidence) > 0 {
		fmt.Fprintln(w, "\nEvidence:")
		writeTable(w, []column[mdebridge.Evidence]{
			{"TYPE", func(e mdebridge.Evidence) string { return e.EntityType }},
			{"WHAT", func(e mdebridge.Evidence) string { return evidenceWhat(e) }},
			{"SHA1", func(e mdebridge.Evidence) string { return e.SHA1 }},
			{"ACCOUNT", func(e mdebridge.Evidence) string { return strings.Trim(e.DomainName+`\`+e.AccountName, `\`) }},
			{"STATUS", func(e mdebridge.Evidence) string { return e.DetectionStatus }},
		}, a.Evidence)
	}
	if len(a.Comments) > 0 {
		fmt.Fprintln(w, "\nComments:")
		for _, c := range a.Comments {
			fmt.Fprintf(w, "  %s %s: %s\n", fmtTime(c.CreatedTime), c.CreatedBy, c.Comment)
		}
	}
}

// evidenceWhat is the one thing an evidence entry is about.
func evidenceWhat(e mdebridge.Evidence) string {
	switch {
	case e.ProcessCommandLine != "":
		return e.ProcessCommandLine
	case e.FileName != "":
		return strings.TrimSuffix(e.FilePath, `\`) + `\` + e.FileName
	case e.URL != "":
		return e.URL
	case e.IPAddress != "":
		return e.IPAddress
	case e.RegistryKey != "":
		return e.RegistryHive + `\` + e.RegistryKey + ` ` + e.RegistryValueName + `=` + e.RegistryValue
	case e.UserPrincipalName != "":
		return e.UserPrincipalName
	}
	return e.AccountName
}

// updateFlags are the flags of a change to an incident or alert.
type updateFlags struct {
	u mdebridge.AlertUpdate
}

func (f *updateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.u.Status, "status", "", "New, InProgress or Resolved")
	fs.StringVar(&f.u.AssignedTo, "assign", "", "assign to this user (UPN)")
	fs.StringVar(&f.u.Classification, "classification", "", "TruePositive, InformationalExpectedActivity or FalsePositive")
	fs.StringVar(&f.u.Determination, "determination", "", "a determination of the classification, e.g. Malware, SecurityTesting, NotMalicious")
	fs.StringVar(&f.u.Comment, "comment", "", "add a comment")
}

// author names who makes a change from the command line.
func author(env *Env) string {
	for _, k := range []string{"MDEBRIDGE_USER", "USER", "USERNAME"} {
		if v := env.Getenv(k); v != "" {
			return v + " (mdebridge CLI)"
		}
	}
	return "mdebridge CLI"
}

func alertsUpdate(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("alerts update", flag.ContinueOnError)
	var uf updateFlags
	uf.register(fs)
	if ok, code := parseFlags(fs, env, g, args, "alerts update <alert id> [--status S] [--assign WHO] [--classification C] [--determination D] [--comment TEXT]"); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(env, "alerts update", "name one alert by its id")
	}
	if uf.u.IsZero() {
		return usageError(env, "alerts update", "say what to change: --status, --assign, --classification, --determination or --comment")
	}
	return changeIncident(ctx, env, g, "alerts update", func(svc mdebridge.IncidentService) (*mdebridge.Incident, error) {
		return svc.ChangeAlert(ctx, fs.Arg(0), mdebridge.IncidentChange{AlertUpdate: uf.u, Author: author(env)})
	})
}

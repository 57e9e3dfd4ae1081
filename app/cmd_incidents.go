package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mdebridge/mdebridge"
)

func cmdIncidents(ctx context.Context, env *Env, g *globals, args []string) int {
	return subcommand(ctx, env, g, "incidents", args, "Usage: mdebridge incidents list [--status S] [--severity S] [--assigned-to WHO] [--since 24h] [--limit N] [-o table|json|jsonl|csv]\n"+
		"       mdebridge incidents show <id> [-o table|json]\n"+
		"       mdebridge incidents update <id> [--status S] [--assign WHO] [--classification C] [--determination D] [--comment TEXT]\n"+
		"       mdebridge incidents comment <id> <text>\n"+
		"       mdebridge incidents events [--incident ID] [--after SEQ] [--limit N]   (as the sinks received them, JSON Lines)",
		verb{"list", incidentsList}, verb{"show", incidentsShow}, verb{"update", incidentsUpdate}, verb{"comment", incidentsComment}, verb{"events", incidentsEvents})
}

func incidentsList(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("incidents list", flag.ContinueOnError)
	var f mdebridge.IncidentFilter
	fs.StringVar(&f.Status, "status", "", "New, InProgress or Resolved")
	fs.StringVar(&f.Severity, "severity", "", "Informational, Low, Medium or High")
	fs.StringVar(&f.AssignedTo, "assigned-to", "", "assignee")
	since := fs.String("since", "", "changed since: a duration back from now (24h) or an RFC 3339 time")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many (0: all)")
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	if ok, code := parseFlags(fs, env, g, args, "incidents list [filters] [-o table|json|jsonl|csv]"); !ok {
		return code
	}
	if err := checkFormat("incidents list", *out); err != nil {
		return usageError(env, "incidents list", "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(env, "incidents list", "unexpected argument %q", fs.Arg(0))
	}
	var err error
	if f.UpdatedSince, err = sinceFlag(*since); err != nil {
		return usageError(env, "incidents list", "%v", err)
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "incidents list", err)
	}
	defer a.Close()
	incs, total, err := store.FindIncidents(ctx, f)
	if err != nil {
		return fail(env, "incidents list", err)
	}
	err = writeList(env, *out, "incidents", incs, total, incidentColumns, marshalled[mdebridge.Incident])
	if err != nil {
		return fail(env, "incidents list", err)
	}
	return ExitOK
}

var incidentColumns = []column[mdebridge.Incident]{
	{"ID", func(i mdebridge.Incident) string { return strconv.FormatInt(i.ID, 10) }},
	{"UPDATED", func(i mdebridge.Incident) string { return fmtTime(i.UpdatedAt) }},
	{"SEVERITY", func(i mdebridge.Incident) string { return i.Severity }},
	{"STATUS", func(i mdebridge.Incident) string { return i.Status }},
	{"TITLE", func(i mdebridge.Incident) string { return i.Title }},
	{"ALERTS", func(i mdebridge.Incident) string { return strconv.Itoa(len(i.AlertIDs)) }},
	{"MACHINES", func(i mdebridge.Incident) string { return strings.Join(i.Machines, ",") }},
	{"ASSIGNED TO", func(i mdebridge.Incident) string { return i.AssignedTo }},
	{"CLASSIFICATION", func(i mdebridge.Incident) string { return i.Classification }},
}

func incidentArg(env *Env, cmd string, fs *flag.FlagSet, want int) (int64, bool) {
	if fs.NArg() < 1 || (want > 0 && fs.NArg() != want) {
		usageError(env, cmd, "name one incident by its id")
		return 0, false
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || id < 1 {
		usageError(env, cmd, "%q is not an incident id (a positive whole number)", fs.Arg(0))
		return 0, false
	}
	return id, true
}

func incidentsShow(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("incidents show", flag.ContinueOnError)
	out := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, "incidents show <id> [-o table|json]"); !ok {
		return code
	}
	if err := checkFormat("incidents show", *out, "table", "json"); err != nil {
		return usageError(env, "incidents show", "%v", err)
	}
	id, ok := incidentArg(env, "incidents show", fs, 1)
	if !ok {
		return ExitUsage
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "incidents show", err)
	}
	defer a.Close()
	inc, err := store.GetIncident(ctx, id)
	if err != nil {
		return fail(env, "incidents show", err)
	}
	if *out == "json" {
		writeJSON(env.Stdout, inc)
		return ExitOK
	}
	alerts, _, err := store.FindAlerts(ctx, mdebridge.AlertFilter{Incident: id})
	if err != nil {
		return fail(env, "incidents show", err)
	}
	printIncident(env.Stdout, inc, alerts)
	return ExitOK
}

func printIncident(w io.Writer, inc *mdebridge.Incident, alerts []mdebridge.Alert) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-16s %s\n", k+":", v)
		}
	}
	row("Incident", fmt.Sprintf("%d (%s)", inc.ID, inc.Key))
	row("Title", inc.Title)
	row("Severity", inc.Severity)
	row("Status", inc.Status)
	row("Classification", strings.TrimSpace(inc.Classification+" "+inc.Determination))
	row("Assigned to", inc.AssignedTo)
	row("MDE incident", formatRef(inc.MDEIncidentID))
	row("Machines", strings.Join(inc.Machines, ", "))
	row("Categories", strings.Join(inc.Categories, ", "))
	row("First alert", fmtTime(inc.FirstAlertTime))
	row("Last update", fmtTime(inc.LastUpdateTime))
	row("Created", fmtTime(inc.CreatedAt))
	row("Changed", fmt.Sprintf("%s (event %d)", fmtTime(inc.UpdatedAt), inc.Version))
	if m := inc.Mirror; m != nil {
		row("Not yet in MDE", fmt.Sprintf("%d change(s) pending, %d failed %s", m.Pending, m.Failed, m.LastError))
	}
	fmt.Fprintln(w, "\nAlerts:")
	writeTable(w, alertColumns[:len(alertColumns)-2:len(alertColumns)-2], alerts)
	if len(inc.Comments) > 0 {
		fmt.Fprintln(w, "\nComments:")
		for _, c := range inc.Comments {
			fmt.Fprintf(w, "  %s %s: %s\n", fmtTime(c.CreatedTime), c.CreatedBy, c.Comment)
		}
	}
}

// changeIncident runs a change through the incident service and prints
// the incident as it now is.
func changeIncident(ctx context.Context, env *Env, g *globals, cmd string, change func(mdebridge.IncidentService) (*mdebridge.Incident, error)) int {
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, cmd, err)
	}
	defer a.Close()
	svc, err := a.IncidentService(ctx)
	if err != nil {
		return fail(env, cmd, err)
	}
	inc, err := change(svc)
	if err != nil {
		return fail(env, cmd, err)
	}
	fmt.Fprintf(env.Stdout, "Incident %d: %s, %s", inc.ID, inc.Status, inc.Title)
	if inc.AssignedTo != "" {
		fmt.Fprintf(env.Stdout, ", assigned to %s", inc.AssignedTo)
	}
	fmt.Fprintln(env.Stdout)
	switch m := inc.Mirror; {
	case !a.Config.Incidents.Mirror:
		fmt.Fprintln(env.Stdout, "Changed here only: incidents.mirror is off.")
	case m == nil:
		fmt.Fprintln(env.Stdout, "MDE has the change.")
	default:
		fmt.Fprintf(env.Stderr, "MDE does not have the change yet (%d pending, %d failed): %s\n", m.Pending, m.Failed, describeMirror(m.LastError))
		if m.Failed > 0 {
			return ExitPartial
		}
	}
	return ExitOK
}

func describeMirror(msg string) string {
	if msg == "" {
		return "mdebridge serve retries it"
	}
	if strings.Contains(msg, "permission denied") {
		return msg + "; " + permissionFix
	}
	return msg
}

func incidentsUpdate(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("incidents update", flag.ContinueOnError)
	var uf updateFlags
	uf.register(fs)
	if ok, code := parseFlags(fs, env, g, args, "incidents update <id> [--status S] [--assign WHO] [--classification C] [--determination D] [--comment TEXT]"); !ok {
		return code
	}
	id, ok := incidentArg(env, "incidents update", fs, 1)
	if !ok {
		return ExitUsage
	}
	if uf.u.IsZero() {
		return usageError(env, "incidents update", "say what to change: --status, --assign, --classification, --determination or --comment")
	}
	return changeIncident(ctx, env, g, "incidents update", func(svc mdebridge.IncidentService) (*mdebridge.Incident, error) {
		return svc.ChangeIncident(ctx, id, mdebridge.IncidentChange{AlertUpdate: uf.u, Author: author(env)})
	})
}

func incidentsComment(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("incidents comment", flag.ContinueOnError)
	if ok, code := parseFlags(fs, env, g, args, "incidents comment <id> <text>"); !ok {
		return code
	}
	id, ok := incidentArg(env, "incidents comment", fs, 0)
	if !ok {
		return ExitUsage
	}
	text := strings.TrimSpace(strings.Join(fs.Args()[1:], " "))
	if text == "" {
		return usageError(env, "incidents comment", "say what to comment")
	}
	return changeIncident(ctx, env, g, "incidents comment", func(svc mdebridge.IncidentService) (*mdebridge.Incident, error) {
		return svc.ChangeIncident(ctx, id, mdebridge.IncidentChange{AlertUpdate: mdebridge.AlertUpdate{Comment: text}, Author: author(env)})
	})
}

func incidentsEvents(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("incidents events", flag.ContinueOnError)
	var f mdebridge.EventFilter
	fs.Int64Var(&f.Incident, "incident", 0, "the events of this incident only")
	fs.Int64Var(&f.After, "after", 0, "events after this sequence number")
	fs.IntVar(&f.Limit, "limit", 1000, "at most this many")
	if ok, code := parseFlags(fs, env, g, args, "incidents events [--incident ID] [--after SEQ] [--limit N]"); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, "incidents events", "unexpected argument %q", fs.Arg(0))
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "incidents events", err)
	}
	defer a.Close()
	evs, err := store.FindEvents(ctx, f)
	if err != nil {
		return fail(env, "incidents events", err)
	}
	for _, e := range evs {
		env.Stdout.Write(append(e.Body, '\n'))
	}
	return ExitOK
}

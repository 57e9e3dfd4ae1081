package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/mde"
)

// cmdEnrich shows what MDE knows about a file hash, IP address, domain, URL
// or user account, in one view.
func cmdEnrich(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("enrich", flag.ContinueOnError)
	kind := fs.String("kind", "", "file, ip, domain, url or user (default: detected from the value)")
	out := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, "enrich <sha1|sha256|ip|domain|url|user> [--kind K] [-o table|json]"); !ok {
		return code
	}
	if err := checkFormat("enrich", *out, "table", "json"); err != nil {
		return usageError(env, "enrich", "%v", err)
	}
	if fs.NArg() != 1 {
		return usageError(env, "enrich", "name one value: a SHA-1 or SHA-256, an IP address, a domain, a URL or an account name")
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "enrich", err)
	}
	defer a.Close()
	svc, err := a.Responder(ctx)
	if err != nil {
		return fail(env, "enrich", err)
	}
	var e *mdebridge.Enrichment
	if *kind != "" {
		e, err = svc.EnrichAs(ctx, *kind, fs.Arg(0))
	} else {
		e, err = svc.Enrich(ctx, fs.Arg(0))
	}
	var ue *mdebridge.InputError
	if errors.As(err, &ue) {
		return usageError(env, "enrich", "%s", ue.Msg)
	}
	if err != nil {
		return fail(env, "enrich", err)
	}
	if *out == "json" {
		writeJSON(env.Stdout, e)
	} else {
		printEnrichment(env.Stdout, e)
	}
	if len(e.Errors) > 0 {
		for _, part := range slices.Sorted(maps.Keys(e.Errors)) {
			fmt.Fprintf(env.Stderr, "mdebridge enrich: %s: %s\n", part, e.Errors[part])
		}
		return ExitPartial
	}
	return ExitOK
}

func printEnrichment(w io.Writer, e *mdebridge.Enrichment) {
	fmt.Fprintf(w, "%s %s\n", strings.ToUpper(e.Kind[:1])+e.Kind[1:], e.Value)
	row := func(k string, v any) {
		if s := fmt.Sprint(v); s != "" && s != "<nil>" {
			fmt.Fprintf(w, "  %-22s %s\n", k+":", s)
		}
	}
	if len(e.Info) > 0 {
		var f struct {
			SHA1, SHA256, MD5, FilePublisher, FileProductName, Signer, DeterminationType, DeterminationValue string
			GlobalPrevalence                                                                                 *int64
			Size                                                                                             *int64
			IsValidCertificate                                                                               *bool
		}
		json.Unmarshal(e.Info, &f)
		fmt.Fprintln(w, "\nProfile:")
		row("SHA-1", f.SHA1)
		row("SHA-256", f.SHA256)
		row("MD5", f.MD5)
		row("Determination", strings.TrimSpace(f.DeterminationType+" "+f.DeterminationValue))
		row("Publisher", f.FilePublisher)
		row("Product", f.FileProductName)
		row("Signer", f.Signer)
		if f.IsValidCertificate != nil {
			row("Valid certificate", *f.IsValidCertificate)
		}
		if f.Size != nil {
			row("Size", *f.Size)
		}
		if f.GlobalPrevalence != nil {
			row("Global prevalence", thousands(int(*f.GlobalPrevalence)))
		}
	}
	if len(e.Stats) > 0 {
		var st struct {
			OrganizationPrevalence *int64
			GloballyPrevalence     *int64
			OrgFirstSeen           string
			OrgLastSeen            string
			TopFileNames           []string
		}
		json.Unmarshal(e.Stats, &st)
		fmt.Fprintln(w, "\nPrevalence:")
		if st.OrganizationPrevalence != nil {
			row("In the organisation", fmt.Sprintf("%s machine(s)", thousands(int(*st.OrganizationPrevalence))))
		}
		row("First seen", st.OrgFirstSeen)
		row("Last seen", st.OrgLastSeen)
		if st.GloballyPrevalence != nil {
			row("Worldwide", thousands(int(*st.GloballyPrevalence)))
		}
		if len(st.TopFileNames) > 0 {
			row("Names", strings.Join(st.TopFileNames, ", "))
		}
	}
	var ms []mdebridge.Machine
	for _, raw := range e.Machines {
		if m, err := mde.DecodeMachine(raw); err == nil {
			ms = append(ms, m)
		}
	}
	fmt.Fprintf(w, "\nMachines (%d):\n", len(ms))
	if len(ms) > 0 {
		shown := ms[:min(len(ms), 20)]
		writeTable(w, machineColumns[:7], shown)
		if len(ms) > len(shown) {
			fmt.Fprintf(w, "  … and %d more (-o json lists them all)\n", len(ms)-len(shown))
		}
	}
	type alertRow struct{ ID, Severity, Status, Title, Machine, Created string }
	var alerts []alertRow
	for _, raw := range e.Alerts {
		var a struct {
			ID, Severity, Status, Title, ComputerDNSName, AlertCreationTime string
		}
		json.Unmarshal(raw, &a)
		alerts = append(alerts, alertRow{a.ID, a.Severity, a.Status, a.Title, a.ComputerDNSName, a.AlertCreationTime})
	}
	fmt.Fprintf(w, "\nAlerts (%d):\n", len(alerts))
	if len(alerts) > 0 {
		writeTable(w, []column[alertRow]{
			{"CREATED", func(a alertRow) string { return a.Created }},
			{"SEVERITY", func(a alertRow) string { return a.Severity }},
			{"STATUS", func(a alertRow) string { return a.Status }},
			{"MACHINE", func(a alertRow) string { return a.Machine }},
			{"TITLE", func(a alertRow) string { return a.Title }},
			{"ID", func(a alertRow) string { return a.ID }},
		}, alerts[:min(len(alerts), 20)])
	}
	fmt.Fprintf(w, "\nCustom indicators (%d):\n", len(e.Indicators))
	if len(e.Indicators) > 0 {
		writeTable(w, indicatorColumns, e.Indicators)
	}
}

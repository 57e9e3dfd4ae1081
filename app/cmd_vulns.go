package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mdebridge/mdebridge"
)

func cmdVulns(ctx context.Context, env *Env, g *globals, args []string) int {
	return subcommand(ctx, env, g, "vulns", args, "Usage: mdebridge vulns list [filters] [-o table|json|jsonl|csv]\n       mdebridge vulns show <CVE> [--limit N] [-o table|json]",
		verb{"list", vulnsList}, verb{"show", vulnsShow})
}

// deviceOf resolves a machine given by id, name or IP to its device id: a
// machine of the inventory, or else a device id the exports named.
func deviceOf(ctx context.Context, store mdebridge.MachineStore, key string) (string, error) {
	m, err := store.FindMachine(ctx, key)
	if err == nil {
		return m.ID, nil
	}
	if errors.Is(err, mdebridge.ErrNotFound) && deviceID(key) {
		return strings.ToLower(key), nil
	}
	return "", err
}

func deviceID(s string) bool {
	if len(s) != 40 {
		return false
	}
	_, err := strconv.ParseUint(s[:16], 16, 64)
	return err == nil
}

func vulnsList(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("vulns list", flag.ContinueOnError)
	var f mdebridge.VulnerabilityFilter
	fs.StringVar(&f.Severity, "severity", "", "at least this severity: Low, Medium, High, Critical")
	fs.Float64Var(&f.MinCVSS, "min-cvss", 0, "CVSS v3 score at least")
	fs.BoolVar(&f.ExploitOnly, "exploit", false, "only CVEs with a public exploit")
	machine := fs.String("machine", "", "found on this machine (id, computer name or IP)")
	fs.StringVar(&f.Software, "software", "", "found in this product: vendor-_-name, or a name such as chrome")
	fs.StringVar(&f.CVE, "cve", "", "this CVE, or CVEs whose id starts with it")
	fs.BoolVar(&f.IncludeUnseen, "all", false, "include catalogue entries no machine has")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many (0: all)")
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	if ok, code := parseFlags(fs, env, g, args, "vulns list [--severity S] [--min-cvss N] [--exploit] [--machine M] [--software P] [--cve ID] [--all] [--limit N] [-o table|json|jsonl|csv]"); !ok {
		return code
	}
	if err := checkFormat("vulns list", *out); err != nil {
		return usageError(env, "vulns list", "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(env, "vulns list", "unexpected argument %q", fs.Arg(0))
	}
	if f.Severity != "" && mdebridge.SeverityRank(f.Severity) == 0 {
		return usageError(env, "vulns list", "--severity %q is not one of Low, Medium, High, Critical", f.Severity)
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "vulns list", err)
	}
	defer a.Close()
	if *machine != "" {
		if f.Machine, err = deviceOf(ctx, store, *machine); err != nil {
			return fail(env, "vulns list", err)
		}
	}
	vs, total, err := store.FindVulnerabilities(ctx, f)
	if err != nil {
		return fail(env, "vulns list", err)
	}
	switch *out {
	case "json":
		err = writeRawArray(env.Stdout, vulnRaws(vs))
	case "jsonl":
		err = writeRawLines(env.Stdout, vulnRaws(vs))
	case "csv":
		err = writeCSV(env.Stdout, vulnColumns, vs)
	default:
		err = writeTable(env.Stdout, vulnColumns, vs)
		if err == nil && total > len(vs) {
			fmt.Fprintf(env.Stderr, "(%d of %d vulnerabilities shown)\n", len(vs), total)
		}
	}
	if err != nil {
		return fail(env, "vulns list", err)
	}
	return ExitOK
}

func vulnRaws(vs []mdebridge.VulnerabilitySummary) []json.RawMessage {
	out := make([]json.RawMessage, len(vs))
	for i, v := range vs {
		out[i] = v.Raw
	}
	return out
}

func exploitWord(v mdebridge.Vulnerability) string {
	switch {
	case v.ExploitInKit:
		return "in kit"
	case v.ExploitVerified:
		return "verified"
	case v.PublicExploit:
		return "public"
	}
	return ""
}

func fmtCVSS(f float64) string {
	if f == 0 {
		return ""
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

var vulnColumns = []column[mdebridge.VulnerabilitySummary]{
	{"CVE", func(v mdebridge.VulnerabilitySummary) string { return v.ID }},
	{"SEVERITY", func(v mdebridge.VulnerabilitySummary) string { return v.Severity }},
	{"CVSS", func(v mdebridge.VulnerabilitySummary) string { return fmtCVSS(v.CVSSV3) }},
	{"EXPLOIT", func(v mdebridge.VulnerabilitySummary) string { return exploitWord(v.Vulnerability) }},
	{"MACHINES", func(v mdebridge.VulnerabilitySummary) string { return strconv.Itoa(v.Machines) }},
	{"SOFTWARE", func(v mdebridge.VulnerabilitySummary) string { return shortList(v.Software, 3) }},
	{"PUBLISHED", func(v mdebridge.VulnerabilitySummary) string {
		if v.PublishedOn.Year() < 1990 {
			return ""
		}
		return v.PublishedOn.Format("2006-01-02")
	}},
}

// shortList joins up to n items and says how many more there are.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ",")
	}
	return strings.Join(items[:n], ",") + fmt.Sprintf(" +%d", len(items)-n)
}

func vulnsShow(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("vulns show", flag.ContinueOnError)
	limit := fs.Int("limit", 50, "exposed machines to list in the table (0: all; -o json lists all)")
	key, out, ok, code := parseShow(fs, env, g, args, "vulns show <CVE> [--limit N] [-o table|json]", "name one CVE, e.g. CVE-2024-7256")
	if !ok {
		return code
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "vulns show", err)
	}
	defer a.Close()
	n := *limit
	if out == "json" {
		n = 0
	}
	d, err := store.FindVulnerability(ctx, key, n)
	if err != nil {
		return fail(env, "vulns show", err)
	}
	if out == "json" {
		machines := make([]json.RawMessage, len(d.Exposed))
		for i, m := range d.Exposed {
			machines[i], _ = json.Marshal(m.MachineVulnerability)
		}
		obj := map[string]any{"vulnerability": json.RawMessage(d.Raw), "exposedMachines": machines}
		if err := writeJSON(env.Stdout, obj); err != nil {
			return fail(env, "vulns show", err)
		}
		return ExitOK
	}
	printVulnerability(env.Stdout, d)
	if len(d.Exposed) < d.Machines {
		fmt.Fprintf(env.Stderr, "(%d of %d machines shown; --limit 0 shows all)\n", len(d.Exposed), d.Machines)
	}
	return ExitOK
}

func printVulnerability(w io.Writer, d *mdebridge.VulnerabilityDetail) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-18s %s\n", k+":", v)
		}
	}
	v := d.Vulnerability
	row("CVE", v.ID)
	row("Severity", strings.TrimSpace(v.Severity+" "+fmtCVSS(v.CVSSV3)))
	row("Vector", v.CVSSVector)
	row("Exploit", strings.TrimSpace(exploitWord(v)+" "+strings.Join(v.ExploitTypes, ", ")))
	if v.EPSS != nil {
		row("EPSS", strconv.FormatFloat(*v.EPSS, 'f', -1, 64))
	}
	if v.PublishedOn.Year() > 1990 {
		row("Published", v.PublishedOn.Format("2006-01-02"))
	}
	if v.UpdatedOn.Year() > 1990 {
		row("Updated", v.UpdatedOn.Format("2006-01-02"))
	}
	row("Software", strings.Join(d.Software, ", "))
	row("Machines", strconv.Itoa(d.Machines))
	if !d.InCatalogue {
		row("Catalogue", "not in the CVE catalogue (known from the exports only)")
	}
	if v.Description != "" {
		fmt.Fprintf(w, "\n%s\n", v.Description)
	}
	if len(d.Exposed) == 0 {
		return
	}
	fmt.Fprintln(w, "\nExposed machines:")
	writeTable(w, []column[mdebridge.ExposedMachine]{
		{"NAME", func(m mdebridge.ExposedMachine) string { return m.DeviceName }},
		{"SOFTWARE", func(m mdebridge.ExposedMachine) string { return m.SoftwareVendor + " " + m.SoftwareName }},
		{"VERSION", func(m mdebridge.ExposedMachine) string { return m.SoftwareVersion }},
		{"FIX", func(m mdebridge.ExposedMachine) string {
			return strings.TrimSpace(m.RecommendedSecurityUpdate + " " + m.RecommendedSecurityUpdateID)
		}},
		{"FIRST SEEN", func(m mdebridge.ExposedMachine) string { return fmtTime(m.FirstSeen) }},
		{"GROUP", func(m mdebridge.ExposedMachine) string { return m.RBACGroupName }},
		{"ID", func(m mdebridge.ExposedMachine) string {
			if !m.InInventory {
				return m.DeviceID + " (not in the machine inventory)"
			}
			return m.DeviceID
		}},
	}, d.Exposed)
}

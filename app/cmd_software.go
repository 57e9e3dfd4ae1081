package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/mdebridge/mdebridge"
)

func cmdSoftware(ctx context.Context, env *Env, g *globals, args []string) int {
	return subcommand(ctx, env, g, "software", args, "Usage: mdebridge software list [filters] [-o table|json|jsonl|csv]\n       mdebridge software show <vendor-_-name|name> [-o table|json]",
		verb{"list", softwareList}, verb{"show", softwareShow})
}

var softwareColumns = []column[mdebridge.SoftwareSummary]{
	{"ID", func(s mdebridge.SoftwareSummary) string { return s.ID }},
	{"VERSIONS", func(s mdebridge.SoftwareSummary) string { return strconv.Itoa(s.Versions) }},
	{"INSTALLED", func(s mdebridge.SoftwareSummary) string { return strconv.Itoa(s.InstalledMachines) }},
	{"EXPOSED", func(s mdebridge.SoftwareSummary) string { return strconv.Itoa(s.ExposedMachines) }},
	{"WEAKNESSES", func(s mdebridge.SoftwareSummary) string { return strconv.Itoa(s.Weaknesses) }},
	{"EXPLOIT", func(s mdebridge.SoftwareSummary) string {
		if s.PublicExploit {
			return "yes"
		}
		return ""
	}},
	{"END OF SUPPORT", func(s mdebridge.SoftwareSummary) string { return s.EndOfSupportStatus }},
}

func softwareList(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("software list", flag.ContinueOnError)
	var f mdebridge.SoftwareFilter
	fs.StringVar(&f.Vendor, "vendor", "", "vendor, e.g. microsoft, google")
	fs.StringVar(&f.Name, "name", "", "product name prefix, e.g. chrome")
	fs.BoolVar(&f.Vulnerable, "vulnerable", false, "only products with a CVE on some machine")
	fs.BoolVar(&f.EndOfSupport, "eos", false, "only products out of support somewhere")
	machine := fs.String("machine", "", "installed on this machine (id, computer name or IP)")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many (0: all)")
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	if ok, code := parseFlags(fs, env, g, args, "software list [--vendor V] [--name N] [--vulnerable] [--eos] [--machine M] [--limit N] [-o table|json|jsonl|csv]"); !ok {
		return code
	}
	if err := checkFormat("software list", *out); err != nil {
		return usageError(env, "software list", "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(env, "software list", "unexpected argument %q", fs.Arg(0))
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "software list", err)
	}
	defer a.Close()
	if *machine != "" {
		if f.Machine, err = deviceOf(ctx, store, *machine); err != nil {
			return fail(env, "software list", err)
		}
	}
	list, total, err := store.FindSoftware(ctx, f)
	if err != nil {
		return fail(env, "software list", err)
	}
	switch *out {
	case "json":
		err = writeJSON(env.Stdout, list)
	case "jsonl":
		for _, s := range list {
			if err = json.NewEncoder(env.Stdout).Encode(s); err != nil {
				break
			}
		}
	case "csv":
		err = writeCSV(env.Stdout, softwareColumns, list)
	default:
		err = writeTable(env.Stdout, softwareColumns, list)
		if err == nil && total > len(list) {
			fmt.Fprintf(env.Stderr, "(%d of %d products shown)\n", len(list), total)
		}
	}
	if err != nil {
		return fail(env, "software list", err)
	}
	return ExitOK
}

func softwareShow(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("software show", flag.ContinueOnError)
	key, out, ok, code := parseShow(fs, env, g, args, "software show <vendor-_-name|name> [-o table|json]", "name one product, e.g. google-_-chrome or chrome")
	if !ok {
		return code
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "software show", err)
	}
	defer a.Close()
	d, err := store.FindSoftwareProduct(ctx, key)
	if err != nil {
		return fail(env, "software show", err)
	}
	if out == "json" {
		obj := struct {
			mdebridge.SoftwareSummary
			Distributions   []mdebridge.SoftwareVersion `json:"distributions"`
			Vulnerabilities []json.RawMessage           `json:"vulnerabilities"`
		}{d.SoftwareSummary, d.Distributions, vulnRaws(d.Vulnerabilities)}
		if err := writeJSON(env.Stdout, obj); err != nil {
			return fail(env, "software show", err)
		}
		return ExitOK
	}
	printSoftware(env.Stdout, d)
	return ExitOK
}

func printSoftware(w io.Writer, d *mdebridge.SoftwareDetail) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-18s %s\n", k+":", v)
		}
	}
	row("Software", d.ID)
	row("Installed on", fmt.Sprintf("%s machines (%d versions)", thousands(d.InstalledMachines), d.Versions))
	row("Exposed", fmt.Sprintf("%s machines, %d CVEs", thousands(d.ExposedMachines), d.Weaknesses))
	if d.PublicExploit {
		row("Exploit", "a public exploit exists for one of its CVEs")
	}
	row("End of support", d.EndOfSupportStatus)
	if len(d.Distributions) > 0 {
		fmt.Fprintln(w, "\nVersions:")
		dist := append([]mdebridge.SoftwareVersion(nil), d.Distributions...)
		sort.SliceStable(dist, func(i, j int) bool { return dist[i].Installations > dist[j].Installations })
		writeTable(w, []column[mdebridge.SoftwareVersion]{
			{"VERSION", func(v mdebridge.SoftwareVersion) string { return v.Version }},
			{"INSTALLATIONS", func(v mdebridge.SoftwareVersion) string { return strconv.Itoa(v.Installations) }},
			{"EXPOSED", func(v mdebridge.SoftwareVersion) string { return strconv.Itoa(v.ExposedMachines) }},
			{"CVES", func(v mdebridge.SoftwareVersion) string { return strconv.Itoa(v.Vulnerabilities) }},
		}, dist)
	}
	if len(d.Vulnerabilities) > 0 {
		fmt.Fprintln(w, "\nVulnerabilities:")
		writeTable(w, vulnColumns[:5], d.Vulnerabilities)
	}
}

// printMachineExposure adds a machine's vulnerabilities and software to
// machines show.
func printMachineExposure(ctx context.Context, w io.Writer, store mdebridge.ExposureStore, deviceID string) error {
	e, err := store.MachineExposure(ctx, deviceID)
	if err != nil {
		return err
	}
	row := func(k, v string) { fmt.Fprintf(w, "%-18s %s\n", k+":", v) }
	fmt.Fprintln(w)
	if e.CVEs == 0 && e.Software == 0 {
		row("Vulnerabilities", "none known (not in the exports synced so far)")
		return nil
	}
	var parts []string
	total := 0
	for _, sev := range []string{"Critical", "High", "Medium", "Low", ""} {
		if n := e.Vulnerabilities[sev]; n > 0 {
			total += n
			name := sev
			if name == "" {
				name = "unrated"
			}
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	if total == 0 {
		row("Vulnerabilities", "none")
	} else {
		row("Vulnerabilities", fmt.Sprintf("%s in %s (%s)", plural(e.CVEs, "CVE"), plural(e.VulnerableSoftware, "product"), strings.Join(parts, ", ")))
	}
	if m := e.MostSevere; m != nil {
		desc := m.CVEID + " (" + strings.TrimSpace(m.Severity+" "+cvssText(m.CVSSScore))
		if m.ExploitabilityLevel != "" && m.ExploitabilityLevel != "NoExploit" {
			desc += ", " + m.ExploitabilityLevel
		}
		desc += ") in " + m.SoftwareVendor + " " + m.SoftwareName + " " + m.SoftwareVersion
		if fix := strings.TrimSpace(m.RecommendedSecurityUpdate + " " + m.RecommendedSecurityUpdateID); fix != "" {
			desc += "; fix: " + fix
		}
		row("Most severe", desc)
	}
	sw := fmt.Sprintf("%d installed, %d vulnerable", e.Software, e.VulnerableSoftware)
	if e.EndOfSupport > 0 {
		sw += fmt.Sprintf(", %d out of support", e.EndOfSupport)
	}
	row("Software", sw)
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return thousands(n) + " " + noun + "s"
}

func cvssText(f *float64) string {
	if f == nil {
		return ""
	}
	return "CVSS " + fmtCVSS(*f)
}

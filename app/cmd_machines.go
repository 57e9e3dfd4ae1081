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

func cmdMachines(ctx context.Context, env *Env, g *globals, args []string) int {
	return subcommand(ctx, env, g, "machines", args, "Usage: mdebridge machines list [filters] [-o table|json|jsonl|csv]\n       mdebridge machines show <id|computer name|IP> [-o table|json]\n       mdebridge machines logonusers <id|computer name|IP> [-o table|json|jsonl|csv]",
		verb{"list", machinesList}, verb{"show", machinesShow}, verb{"logonusers", machinesLogonUsers})
}

func machinesList(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("machines list", flag.ContinueOnError)
	var f mdebridge.MachineFilter
	fs.StringVar(&f.OSPlatform, "os", "", "osPlatform, e.g. Windows11, WindowsServer2022, Linux, macOS")
	fs.StringVar(&f.HealthStatus, "health", "", "healthStatus, e.g. Active, Inactive, ImpairedCommunication")
	fs.StringVar(&f.RiskScore, "risk", "", "riskScore: None, Informational, Low, Medium, High")
	fs.StringVar(&f.ExposureLevel, "exposure", "", "exposureLevel: None, Low, Medium, High")
	fs.StringVar(&f.Tag, "tag", "", "machine tag")
	fs.StringVar(&f.RBACGroup, "group", "", "device group (RBAC group) name or id")
	fs.StringVar(&f.NamePrefix, "name", "", "computer name prefix")
	fs.BoolVar(&f.IncludeRetired, "include-retired", false, "include machines that a complete sync no longer saw")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many (0: all)")
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	if ok, code := parseFlags(fs, env, g, args, "machines list [filters] [-o table|json|jsonl|csv]"); !ok {
		return code
	}
	if err := checkFormat("machines list", *out); err != nil {
		return usageError(env, "machines list", "%v", err)
	}
	if fs.NArg() > 0 {
		return usageError(env, "machines list", "unexpected argument %q", fs.Arg(0))
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "machines list", err)
	}
	defer a.Close()
	ms, total, err := store.FindMachines(ctx, f)
	if err != nil {
		return fail(env, "machines list", err)
	}
	switch *out {
	case "json":
		err = writeRawArray(env.Stdout, raws(ms))
	case "jsonl":
		err = writeRawLines(env.Stdout, raws(ms))
	case "csv":
		err = writeCSV(env.Stdout, machineCSVColumns, ms)
	default:
		err = writeTable(env.Stdout, machineColumns, ms)
		if err == nil && total > len(ms) {
			fmt.Fprintf(env.Stderr, "(%d of %d machines shown)\n", len(ms), total)
		}
	}
	if err != nil {
		return fail(env, "machines list", err)
	}
	return ExitOK
}

func raws(ms []mdebridge.Machine) []json.RawMessage {
	out := make([]json.RawMessage, len(ms))
	for i, m := range ms {
		out[i] = m.Raw
	}
	return out
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

var machineColumns = []column[mdebridge.Machine]{
	{"NAME", func(m mdebridge.Machine) string { return m.ComputerDNSName }},
	{"OS", func(m mdebridge.Machine) string { return m.OSPlatform }},
	{"VERSION", func(m mdebridge.Machine) string { return m.Version }},
	{"HEALTH", func(m mdebridge.Machine) string { return m.HealthStatus }},
	{"RISK", func(m mdebridge.Machine) string { return m.RiskScore }},
	{"EXPOSURE", func(m mdebridge.Machine) string { return m.ExposureLevel }},
	{"LAST IP", func(m mdebridge.Machine) string { return m.LastIPAddress }},
	{"LAST SEEN", func(m mdebridge.Machine) string { return fmtTime(m.LastSeen) }},
	{"GROUP", func(m mdebridge.Machine) string { return m.RBACGroupName }},
	{"TAGS", func(m mdebridge.Machine) string { return strings.Join(m.MachineTags, ",") }},
	{"ID", func(m mdebridge.Machine) string { return m.ID }},
}

var machineCSVColumns = append(append([]column[mdebridge.Machine]{}, machineColumns...),
	column[mdebridge.Machine]{"OS VERSION", func(m mdebridge.Machine) string { return m.OSVersion }},
	column[mdebridge.Machine]{"OS BUILD", func(m mdebridge.Machine) string { return fmt.Sprint(m.OSBuild) }},
	column[mdebridge.Machine]{"OS ARCHITECTURE", func(m mdebridge.Machine) string { return m.OSArchitecture }},
	column[mdebridge.Machine]{"ONBOARDING", func(m mdebridge.Machine) string { return m.OnboardingStatus }},
	column[mdebridge.Machine]{"DEVICE VALUE", func(m mdebridge.Machine) string { return m.DeviceValue }},
	column[mdebridge.Machine]{"AGENT VERSION", func(m mdebridge.Machine) string { return m.AgentVersion }},
	column[mdebridge.Machine]{"AV STATUS", func(m mdebridge.Machine) string { return m.DefenderAVStatus }},
	column[mdebridge.Machine]{"EXTERNAL IP", func(m mdebridge.Machine) string { return m.LastExternalIPAddress }},
	column[mdebridge.Machine]{"AAD DEVICE ID", func(m mdebridge.Machine) string { return m.AADDeviceID }},
	column[mdebridge.Machine]{"FIRST SEEN", func(m mdebridge.Machine) string { return fmtTime(m.FirstSeen) }},
	column[mdebridge.Machine]{"MACS", func(m mdebridge.Machine) string { return strings.Join(macs(m), ",") }},
	column[mdebridge.Machine]{"RETIRED AT", func(m mdebridge.Machine) string {
		if m.RetiredAt == nil {
			return ""
		}
		return fmtTime(*m.RetiredAt)
	}},
)

// macs lists a machine's distinct non-empty MAC addresses.
func macs(m mdebridge.Machine) []string {
	var out []string
	seen := map[string]bool{}
	for _, ip := range m.IPAddresses {
		if ip.MACAddress != "" && !seen[ip.MACAddress] {
			seen[ip.MACAddress] = true
			out = append(out, ip.MACAddress)
		}
	}
	return out
}

func machinesShow(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("machines show", flag.ContinueOnError)
	key, out, ok, code := parseShow(fs, env, g, args, "machines show <id|computer name|IP> [-o table|json]", "name one machine: its id, computer name or IP address")
	if !ok {
		return code
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "machines show", err)
	}
	defer a.Close()
	m, err := store.FindMachine(ctx, key)
	if err != nil {
		return fail(env, "machines show", err)
	}
	if out == "json" {
		if err := writeRaw(env.Stdout, m.Raw); err != nil {
			return fail(env, "machines show", err)
		}
		return ExitOK
	}
	printMachine(env.Stdout, m)
	if err := printMachineExposure(ctx, env.Stdout, store, m.ID); err != nil {
		return fail(env, "machines show", err)
	}
	printResponseState(ctx, env.Stdout, store, m.ID)
	return ExitOK
}

func printMachine(w io.Writer, m *mdebridge.Machine) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-18s %s\n", k+":", v)
		}
	}
	row("Name", m.ComputerDNSName)
	row("ID", m.ID)
	row("OS", strings.TrimSpace(strings.Join([]string{m.OSPlatform, m.Version, m.OSVersion}, " ")))
	if m.OSBuild != 0 {
		row("OS build", fmt.Sprint(m.OSBuild))
	}
	row("Architecture", m.OSArchitecture)
	row("Health", m.HealthStatus)
	row("Onboarding", m.OnboardingStatus)
	row("Risk score", m.RiskScore)
	row("Exposure level", m.ExposureLevel)
	row("Device value", m.DeviceValue)
	row("Device group", strings.TrimSpace(fmt.Sprintf("%s (%d)", m.RBACGroupName, m.RBACGroupID)))
	row("Tags", strings.Join(m.MachineTags, ", "))
	row("Last IP", m.LastIPAddress)
	row("External IP", m.LastExternalIPAddress)
	row("Agent version", m.AgentVersion)
	row("AV status", m.DefenderAVStatus)
	row("Managed by", m.ManagedBy)
	if m.IsAADJoined {
		row("Entra ID device", m.AADDeviceID)
	}
	row("First seen", fmtTime(m.FirstSeen))
	row("Last seen", fmtTime(m.LastSeen))
	if m.VMMetadata != nil {
		row("Cloud VM", strings.TrimSpace(m.VMMetadata.CloudProvider+" "+m.VMMetadata.ResourceID))
	}
	if m.IsExcluded {
		row("Excluded", m.ExclusionReason)
	}
	if m.MergedIntoMachineID != "" {
		row("Merged into", m.MergedIntoMachineID)
	}
	row("Synced at", fmtTime(m.SyncedAt))
	if m.RetiredAt != nil {
		row("Retired at", fmtTime(*m.RetiredAt)+" (a complete sync no longer saw it)")
	}
	if len(m.IPAddresses) > 0 {
		fmt.Fprintln(w, "\nNetwork interfaces:")
		writeTable(w, []column[mdebridge.IPAddress]{
			{"IP", func(i mdebridge.IPAddress) string { return i.IPAddress }},
			{"MAC", func(i mdebridge.IPAddress) string { return i.MACAddress }},
			{"TYPE", func(i mdebridge.IPAddress) string { return i.Type }},
			{"STATUS", func(i mdebridge.IPAddress) string { return i.OperationalStatus }},
		}, m.IPAddresses)
	}
}

package app

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/mdebridge/mdebridge"
)

// machinesLogonUsers is `machines logonusers X`: who logged on to a machine.
func machinesLogonUsers(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("machines logonusers", flag.ContinueOnError)
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	synopsis := "machines logonusers <id|computer name|IP> [-o table|json|jsonl|csv]"
	if ok, code := parseFlags(fs, env, g, args, synopsis); !ok {
		return code
	}
	if err := checkFormat("machines logonusers", *out); err != nil {
		return usageError(env, "machines logonusers", "%v", err)
	}
	if fs.NArg() != 1 {
		return usageError(env, "machines logonusers", "name one machine: its id, computer name or IP address")
	}
	a, store, err := openStore(ctx, env, g)
	if err != nil {
		return fail(env, "machines logonusers", err)
	}
	defer a.Close()
	m, err := store.FindMachine(ctx, fs.Arg(0))
	if err != nil {
		return fail(env, "machines logonusers", err)
	}
	users, err := store.MachineLogonUsers(ctx, m.ID)
	if err != nil {
		return fail(env, "machines logonusers", err)
	}
	switch *out {
	case "json":
		err = writeJSON(env.Stdout, users)
	case "jsonl":
		for _, u := range users {
			b, merr := json.Marshal(u)
			if merr != nil {
				return fail(env, "machines logonusers", merr)
			}
			fmt.Fprintf(env.Stdout, "%s\n", b)
		}
	case "csv":
		err = writeCSV(env.Stdout, logonUserColumns, users)
	default:
		err = writeTable(env.Stdout, logonUserColumns, users)
		if err == nil && len(users) == 0 {
			fmt.Fprintf(env.Stderr, "(no logon users stored for %s: none in the last 30 days, or not synced yet — they need AdvancedQuery.Read.All, or User.Read.All)\n", m.ComputerDNSName)
		}
	}
	if err != nil {
		return fail(env, "machines logonusers", err)
	}
	return ExitOK
}

func yesNo(b *bool) string {
	switch {
	case b == nil:
		return ""
	case *b:
		return "yes"
	}
	return "no"
}

var logonUserColumns = []column[mdebridge.LogonUser]{
	{"ACCOUNT", func(u mdebridge.LogonUser) string { return u.ID() }},
	{"LOGON TYPES", func(u mdebridge.LogonUser) string { return strings.Join(u.LogonTypes, ",") }},
	{"FIRST SEEN", func(u mdebridge.LogonUser) string { return fmtTime(u.FirstSeen) }},
	{"LAST SEEN", func(u mdebridge.LogonUser) string { return fmtTime(u.LastSeen) }},
	{"LOCAL ADMIN", func(u mdebridge.LogonUser) string { return yesNo(u.IsLocalAdmin) }},
	{"DOMAIN ADMIN", func(u mdebridge.LogonUser) string { return yesNo(u.IsDomainAdmin) }},
	{"SID", func(u mdebridge.LogonUser) string { return u.AccountSID }},
	{"SOURCE", func(u mdebridge.LogonUser) string { return u.Source }},
}

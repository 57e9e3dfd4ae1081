package hunting_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/emulator"
	"github.com/mdebridge/mdebridge/emulator/emulatortest"
	"github.com/mdebridge/mdebridge/emulator/kql"
	"github.com/mdebridge/mdebridge/hunting"
	"github.com/mdebridge/mdebridge/mde"
	"github.com/mdebridge/mdebridge/ratelimit"
)

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func client(t *testing.T, machines int) (*mde.Client, *emulatortest.Emu) {
	t.Helper()
	// No limits on either side: the limits are tested where they live, and
	// this test runs a few hundred queries.
	emu := emulatortest.New(t, emulatortest.WithMachines(machines), emulatortest.WithNow(func() time.Time { return now }),
		emulatortest.WithRateLimits(emulator.RateLimits{Off: true}))
	c, err := mde.New(mde.Options{BaseURL: emu.URL, Tokens: staticToken(emu.AppToken(t)), HTTPClient: emu.Client,
		Limits: func(string) []ratelimit.Window { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return c, emu
}

// TestLibraryRunsOnTheEmulator renders every named query, with each
// parameter it takes, and runs it: every one parses and names real
// columns, and the ones that look for the emulated tenant's incidents find
// some.
func TestLibraryRunsOnTheEmulator(t *testing.T) {
	c, _ := client(t, 300)
	values := map[string]string{"user": `contoso\alex`, "file": "cmd.exe", "sha1": strings.Repeat("a", 40),
		"sha256": strings.Repeat("b", 64), "md5": strings.Repeat("c", 32), "ip": "10.1.2.3", "domain": "example.com"}
	expectRows := map[string]bool{
		"lateral-movement/credential-dumping": true, "persistence/scheduled-task": true, "persistence/registry-run-key": true,
		"persistence/new-user": true, "process/encoded-commands": true, "process/beaconing": true,
		"cover-up/event-log-cleared": true, "lateral-movement/failed-logons": true, "device/info": true,
		"network/dns-queries": true, "privilege-escalation/system-from-user": true, "cover-up/action-types": true,
	}
	for _, q := range hunting.Library() {
		// An hour of data is enough to check a query's names and types;
		// the ones expected to find an incident look at the whole month.
		p := hunting.Params{Since: time.Hour, Limit: 5}
		if expectRows[q.Name] {
			p.Since = 30 * 24 * time.Hour
		}
		if len(q.NeedsOneOf) > 0 {
			p.File = "cmd.exe"
			if q.NeedsOneOf[0] == "ip" {
				p.IP = "45.137.21.9"
			}
		}
		res, err := runNamed(t, c, q.Name, p)
		if err != nil {
			t.Errorf("%s: %v", q.Name, err)
			continue
		}
		if expectRows[q.Name] && len(res.Results) == 0 {
			t.Errorf("%s found nothing in a tenant with incidents", q.Name)
		}
		if len(res.Results) > 5 {
			t.Errorf("%s: %d rows over a limit of 5", q.Name, len(res.Results))
		}
		// Each parameter with what the query needs, and a device.
		for _, f := range q.Params {
			p := hunting.Params{Device: "ws-01", File: p.File, IP: p.IP}
			switch f {
			case "user":
				p.User = values[f]
			case "file":
				p.File = values[f]
			case "sha1":
				p.SHA1 = values[f]
			case "sha256":
				p.SHA256 = values[f]
			case "md5":
				p.MD5 = values[f]
			case "ip":
				p.IP = values[f]
			case "domain":
				p.Domain = values[f]
			}
			if _, err := runNamed(t, c, q.Name, p); err != nil {
				t.Errorf("%s with %s: %v", q.Name, f, err)
			}
		}
	}
}

func runNamed(t *testing.T, c *mde.Client, name string, p hunting.Params) (*mdebridge.HuntingResult, error) {
	t.Helper()
	query, err := hunting.Named(name, p)
	if err != nil {
		return nil, err
	}
	return hunting.Run(t.Context(), c, query)
}

func TestRender(t *testing.T) {
	q, err := hunting.Find("persistence/scheduled-task")
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.Render(hunting.Params{Device: "WS-01", User: `CONTOSO\alex`, Since: 48 * time.Hour, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := `DeviceProcessEvents
| where DeviceName =~ "WS-01" or DeviceName startswith "ws-01."
| where Timestamp > ago(2d)
| where FileName =~ "schtasks.exe" and ProcessCommandLine has "/create"
| where (AccountDomain =~ "CONTOSO" and AccountName =~ "alex")
| project Timestamp, DeviceName, ActionType, FileName, FolderPath, ProcessCommandLine, AccountDomain, AccountName, ProcessIntegrityLevel, InitiatingProcessFileName, InitiatingProcessCommandLine, InitiatingProcessParentFileName, SHA1, DeviceId, ReportId
| order by Timestamp desc
| take 10`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got, _ = q.Render(hunting.Params{Device: strings.Repeat("AB", 20)})
	if !strings.Contains(got, `where DeviceId == "`+strings.Repeat("ab", 20)+`"`) || !strings.Contains(got, "ago(7d)") || !strings.HasSuffix(got, "take 100") {
		t.Errorf("a device id, the defaults:\n%s", got)
	}
}

// TestParametersCannotInject: whatever a parameter holds, it stays one
// string literal of the query.
func TestParametersCannotInject(t *testing.T) {
	q, _ := hunting.Find("file-origin")
	for _, v := range []string{`x" or 1 == 1 //`, `a\" | take 1 | where "`, "semi;colon|pipe", `back\slash`, `'single'`} {
		text, err := q.Render(hunting.Params{File: v})
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		parsed, err := kql.Parse(text)
		if err != nil {
			t.Fatalf("%q: the rendered query does not parse: %v\n%s", v, err, text)
		}
		if len(parsed.Ops) != 6 {
			t.Errorf("%q: %d operators, want 6:\n%s", v, len(parsed.Ops), text)
		}
		where := parsed.Ops[2].(*kql.WhereOp).Pred.(*kql.Binary)
		if lit, ok := where.R.(*kql.Literal); !ok || lit.Val.S != v {
			t.Errorf("%q: the filter is %#v", v, where.R)
		}
	}
}

func TestParamErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    hunting.Params
		want string
	}{
		{"file-origin", hunting.Params{}, "file-origin needs one of --file, --sha1, --sha256, --md5"},
		{"file-origin", hunting.Params{SHA1: "xyz"}, `--sha1 "xyz" is not a SHA1 hash`},
		{"file-origin", hunting.Params{File: "a", IP: "1.2.3.4"}, "file-origin does not take --ip"},
		{"device/info", hunting.Params{User: "x"}, "does not take --user"},
		{"process/powershell", hunting.Params{Limit: 100_001}, "limit must be from 1 to 100000"},
		{"process/powershell", hunting.Params{Since: 31 * 24 * time.Hour}, "since must be from 1m to 30d"},
		{"network/connections-to-ip", hunting.Params{IP: "not an ip"}, "is not an IP address"},
		{"process/powershell", hunting.Params{Device: "ws\n01"}, "--device contains control characters"},
	} {
		q, err := hunting.Find(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = q.Render(tt.p)
		var pe *hunting.ParamError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %+v: %v, want %q", tt.name, tt.p, err, tt.want)
		}
	}
	_, err := hunting.Find("persistance")
	var nf *mdebridge.NotFoundError
	if !errors.As(err, &nf) || len(nf.Near) == 0 || !strings.HasPrefix(nf.Near[0], "persistence/") {
		t.Errorf("a misspelt name: %v", err)
	}
	for _, s := range []string{"7d", "12h", "90m"} {
		if _, err := hunting.ParseSince(s); err != nil {
			t.Errorf("ParseSince(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "7", "1w", "31d", "0d", "-1d"} {
		if _, err := hunting.ParseSince(s); err == nil {
			t.Errorf("ParseSince(%q) accepted", s)
		}
	}
}

func TestRawQueries(t *testing.T) {
	c, _ := client(t, 10)
	res, err := hunting.Run(t.Context(), c, "DeviceInfo | summarize count() by OSPlatform")
	if err != nil || len(res.Schema) != 2 || len(res.Results) == 0 {
		t.Fatalf("%+v %v", res, err)
	}
	var pe *hunting.ParamError
	if _, err := hunting.Run(t.Context(), c, "  "); !errors.As(err, &pe) {
		t.Errorf("an empty query: %v", err)
	}
	if _, err := hunting.Run(t.Context(), c, strings.Repeat("x", hunting.MaxQueryLength+1)); !errors.As(err, &pe) {
		t.Errorf("a huge query: %v", err)
	}
}

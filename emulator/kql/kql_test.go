package kql_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge/emulator/kql"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

var eventCols = []kql.Column{
	{"Timestamp", kql.DateTime},
	{"DeviceId", kql.String},
	{"DeviceName", kql.String},
	{"ActionType", kql.String},
	{"FileName", kql.String},
	{"ProcessCommandLine", kql.String},
	{"RemotePort", kql.Long},
	{"IsLocalAdmin", kql.Bool},
	{"Score", kql.Real},
	{"LoggedOnUsers", kql.String},
}

type ev struct {
	ago                    time.Duration
	id, name, action, file string
	cmd                    string
	port                   int64 // 0: null
	admin                  bool
	score                  float64
	users                  string
}

var events = []ev{
	{1 * time.Hour, "aa01", "ws-01.contoso.com", "ProcessCreated", "powershell.exe", `powershell.exe -enc SQBFAFgA C:\Users\a\AppData\x.ps1`, 0, false, 1.5, `[{"UserName":"alex","DomainName":"CONTOSO"}]`},
	{2 * time.Hour, "aa01", "ws-01.contoso.com", "ConnectionSuccess", "svchost.exe", "", 445, false, 2, `[]`},
	{3 * time.Hour, "bb02", "SRV-02.contoso.com", "ProcessCreated", "cmd.exe", "cmd.exe /c whoami", 0, true, 3, `[{"UserName":"adm-sam","DomainName":"CONTOSO"}]`},
	{26 * time.Hour, "bb02", "SRV-02.contoso.com", "ConnectionSuccess", "sqlservr.exe", "", 1433, true, 4.25, `[]`},
	{50 * time.Hour, "cc03", "mac-03", "ProcessCreated", "bash", "bash -c curl http://x", 0, false, 0.5, `[]`},
	{8 * 24 * time.Hour, "cc03", "mac-03", "ConnectionFailed", "curl", "", 443, false, 7, `[]`},
	{9 * 24 * time.Hour, "aa01", "ws-01.contoso.com", "ProcessCreated", "PowerShell.EXE", "PowerShell.EXE -NoP", 0, true, 1, `[]`},
	{40 * time.Hour, "dd04", "ws-04", "ConnectionSuccess", "chrome.exe", "", 443, false, 9, `[]`},
}

func eventRows() [][]kql.Value {
	var rows [][]kql.Value
	for _, e := range events {
		port := kql.Value{}
		if e.port != 0 {
			port = kql.LongValue(e.port)
		}
		rows = append(rows, []kql.Value{
			kql.TimeValue(now.Add(-e.ago)), kql.StringValue(e.id), kql.StringValue(e.name), kql.StringValue(e.action),
			kql.StringValue(e.file), kql.StringValue(e.cmd), port, kql.BoolValue(e.admin), kql.RealValue(e.score),
			kql.StringValue(e.users),
		})
	}
	return rows
}

// catalogs returns the test table twice: one that uses every hint of the
// filter (pushdown, unread columns, buffer reuse) and one that ignores it.
func catalogs(t testing.TB) (pushed, plain *kql.Catalog) {
	t.Helper()
	pushed, plain = kql.NewCatalog(), kql.NewCatalog()
	if err := pushed.Register(kql.NewMemTable("DeviceEvents", eventCols, eventRows(), "DeviceId", "DeviceName")); err != nil {
		t.Fatal(err)
	}
	if err := plain.Register(naiveTable{kql.NewMemTable("DeviceEvents", eventCols, eventRows())}); err != nil {
		t.Fatal(err)
	}
	return pushed, plain
}

// naiveTable ignores every hint of the filter.
type naiveTable struct{ *kql.MemTable }

func (n naiveTable) Scan(ctx context.Context, _ kql.Filter, emit func([]kql.Value) error) error {
	return n.MemTable.Scan(ctx, kql.Filter{}, emit)
}

// render turns a result into comparable text: a header and one line per
// row of JSON cells.
func render(r *kql.Result) []string {
	var head []string
	for _, c := range r.Columns {
		head = append(head, c.Name+":"+c.Type.String())
	}
	out := []string{strings.Join(head, " ")}
	for _, row := range r.Rows {
		var cells []string
		for i, v := range row {
			cells = append(cells, cell(v, r.Columns[i].Type))
		}
		out = append(out, strings.Join(cells, " "))
	}
	return out
}

// cell writes a value the way advanced hunting's JSON has it.
func cell(v kql.Value, t kql.Type) string {
	switch v.Kind {
	case kql.Null:
		if t == kql.String {
			return `""`
		}
		return "null"
	case kql.String, kql.DateTime, kql.TimeSpan:
		b, _ := json.Marshal(v.Text())
		return string(b)
	}
	return v.Text()
}

func run(t *testing.T, query string, opts kql.Options) (*kql.Result, error) {
	t.Helper()
	pushed, plain := catalogs(t)
	opts.Now = now
	a, errA := kql.Run(t.Context(), pushed, query, opts)
	b, errB := kql.Run(t.Context(), plain, query, opts)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("%s: pushdown changes the error: %v vs %v", query, errA, errB)
	}
	if errA == nil {
		if diff := cmp.Diff(render(b), render(a)); diff != "" {
			t.Fatalf("%s: pushdown changes the result (-plain +pushed):\n%s", query, diff)
		}
	}
	return a, errA
}

func TestQueries(t *testing.T) {
	ts := func(d time.Duration) string { return `"` + now.Add(-d).Format("2006-01-02T15:04:05.0000000Z") + `"` }
	tests := []struct {
		query string
		want  []string
	}{
		{`DeviceEvents | where DeviceId == "bb02" | project DeviceName, FileName`,
			[]string{"DeviceName:string FileName:string", `"SRV-02.contoso.com" "cmd.exe"`, `"SRV-02.contoso.com" "sqlservr.exe"`}},
		{`DeviceEvents | where DeviceName =~ "srv-02.CONTOSO.com" and RemotePort > 1000 | project RemotePort`,
			[]string{"RemotePort:long", `1433`}},
		{`DeviceEvents|where FileName =~ 'powershell.exe'|where ProcessCommandLine contains 'appdata'|project FileName|limit 2`,
			[]string{"FileName:string", `"powershell.exe"`}},
		{`DeviceEvents | where ProcessCommandLine has "enc" | count`, []string{"Count:long", "1"}},
		{`DeviceEvents | where ProcessCommandLine has "en" | count`, []string{"Count:long", "0"}},
		{`DeviceEvents | where ProcessCommandLine !has "whoami" and ActionType startswith "process" | count`, []string{"Count:long", "3"}},
		{`DeviceEvents | where FileName endswith ".EXE" and FileName !endswith_cs ".EXE" | distinct FileName`,
			[]string{"FileName:string", `"powershell.exe"`, `"svchost.exe"`, `"cmd.exe"`, `"sqlservr.exe"`, `"chrome.exe"`}},
		{`DeviceEvents | where RemotePort in (445, 1433) | project DeviceId`, []string{"DeviceId:string", `"aa01"`, `"bb02"`}},
		{`DeviceEvents | where FileName in~ ("CMD.exe", "bash") | project FileName`, []string{"FileName:string", `"cmd.exe"`, `"bash"`}},
		{`DeviceEvents | where FileName !in ("cmd.exe") and isnotnull(RemotePort) | project FileName`,
			[]string{"FileName:string", `"svchost.exe"`, `"sqlservr.exe"`, `"curl"`, `"chrome.exe"`}},
		{`DeviceEvents | where ProcessCommandLine has_any ("whoami", "curl") | project DeviceId`, []string{"DeviceId:string", `"bb02"`, `"cc03"`}},
		{`DeviceEvents | where Timestamp > ago(1d) | project FileName`,
			[]string{"FileName:string", `"powershell.exe"`, `"svchost.exe"`, `"cmd.exe"`}},
		{`DeviceEvents | where Timestamp between (ago(2d) .. ago(1d)) | project FileName`,
			[]string{"FileName:string", `"sqlservr.exe"`, `"chrome.exe"`}},
		{`DeviceEvents | where not(IsLocalAdmin) or Score >= 4 | count`, []string{"Count:long", "6"}},
		{`DeviceEvents | where ProcessCommandLine matches regex @"-enc\s+[A-Za-z0-9+/=]{8,}" | project DeviceId`, []string{"DeviceId:string", `"aa01"`}},
		{`DeviceEvents | summarize Events = count(), Devices = dcount(DeviceId) by ActionType | order by ActionType asc`,
			[]string{"ActionType:string Events:long Devices:long", `"ConnectionFailed" 1 1`, `"ConnectionSuccess" 3 3`, `"ProcessCreated" 4 3`}},
		{`DeviceEvents | summarize arg_max(Timestamp, *) by DeviceId | project DeviceId, Timestamp, FileName | sort by DeviceId asc`,
			[]string{"DeviceId:string Timestamp:datetime FileName:string",
				`"aa01" ` + ts(time.Hour) + ` "powershell.exe"`, `"bb02" ` + ts(3*time.Hour) + ` "cmd.exe"`,
				`"cc03" ` + ts(50*time.Hour) + ` "bash"`, `"dd04" ` + ts(40*time.Hour) + ` "chrome.exe"`}},
		{`DeviceEvents | summarize arg_max(Timestamp, *) by DeviceId | take 1 | project-away LoggedOnUsers, Score, ProcessCommandLine`,
			[]string{"DeviceId:string Timestamp:datetime DeviceName:string ActionType:string FileName:string RemotePort:long IsLocalAdmin:bool",
				`"aa01" ` + ts(time.Hour) + ` "ws-01.contoso.com" "ProcessCreated" "powershell.exe" null false`}},
		{`DeviceEvents | summarize FirstSeen = min(Timestamp), arg_max(Timestamp, FileName), Files = make_set(FileName), Admin = countif(IsLocalAdmin) by DeviceId | where DeviceId == "bb02"`,
			[]string{"DeviceId:string FirstSeen:datetime Timestamp:datetime FileName:string Files:dynamic Admin:long",
				`"bb02" ` + ts(26*time.Hour) + ` ` + ts(3*time.Hour) + ` "cmd.exe" ["cmd.exe","sqlservr.exe"] 2`}},
		{`DeviceEvents | summarize sum(RemotePort), avg(Score), max(Score), make_list(DeviceId, 2)`,
			[]string{"sum_RemotePort:long avg_Score:real max_Score:real list_DeviceId:dynamic", `2764 3.53125 9 ["aa01","aa01"]`}},
		{`DeviceEvents | where DeviceId == "none" | summarize count()`, []string{"count_:long", "0"}},
		{`DeviceEvents | where DeviceId == "none" | summarize count() by DeviceId`, []string{"DeviceId:string count_:long"}},
		{`DeviceEvents | summarize count() by bin(Timestamp, 1d) | order by Timestamp desc | take 2`,
			[]string{"Timestamp:datetime count_:long", `"2026-11-20T00:00:00.0000000Z" 3`, `"2026-11-19T00:00:00.0000000Z" 1`}},
		{`DeviceEvents | order by RemotePort desc nulls last, Timestamp asc | project FileName, RemotePort | take 3`,
			[]string{"FileName:string RemotePort:long", `"sqlservr.exe" 1433`, `"svchost.exe" 445`, `"curl" 443`}},
		{`DeviceEvents | top 2 by Score asc | project Score`, []string{"Score:real", "0.5", "1"}},
		{`DeviceEvents | sort by RemotePort asc | take 1 | project FileName`, []string{"FileName:string", `"powershell.exe"`}},
		{`DeviceEvents | extend Host = tolower(substring(DeviceName, 0, 6)), Port = RemotePort * 2, Score = Score + 1 | where Host == "srv-02" | project Host, Port, Score`,
			[]string{"Host:string Port:long Score:real", `"srv-02" null 4`, `"srv-02" 2866 5.25`}},
		{`DeviceEvents | extend Age = now() - Timestamp, Late = iff(Timestamp < ago(7d), "old", "new") | where Late == "old" | project Age, Late, strcat(DeviceId, "/", FileName)`,
			[]string{"Age:timespan Late:string Column1:string", `"8.00:00:00" "old" "cc03/curl"`, `"9.00:00:00" "old" "aa01/PowerShell.EXE"`}},
		{`DeviceEvents | where LoggedOnUsers != "[]" | extend U = parse_json(LoggedOnUsers) | project User = tostring(U[0].UserName), N = array_length(U)`,
			[]string{"User:string N:long", `"alex" 1`, `"adm-sam" 1`}},
		{`DeviceEvents | project-rename Machine = DeviceName | distinct Machine | count`, []string{"Count:long", "4"}},
		{`DeviceEvents | where tolong("12") + toint(" 3") == 15 and todouble("1.5") == 1.5 and tobool("TRUE") | count`, []string{"Count:long", "8"}},
		{`DeviceEvents | where Timestamp > datetime(2026-11-19) and Timestamp <= datetime("2026-11-20T11:00:00Z") | project FileName`,
			[]string{"FileName:string", `"powershell.exe"`, `"svchost.exe"`, `"cmd.exe"`, `"sqlservr.exe"`}},
		{`DeviceEvents | where isempty(ProcessCommandLine) | summarize by RemotePort | order by RemotePort asc`,
			[]string{"RemotePort:long", "443", "445", "1433"}},
		{`DeviceEvents // a comment
			| where DeviceId == 'aa01' // another
			| count`, []string{"Count:long", "3"}},
		{`DeviceEvents | where ipv4_is_private("10.1.2.3") and not(ipv4_is_private("52.1.2.3")) | take 1 | project extract(@"(\d+)", 1, "port 8080")`,
			[]string{"Column1:string", `"8080"`}},
		{`DeviceEvents | project T = 90m, B = bin(7, 5), D = 1d / 1h, S = split("a,b", ","), C = coalesce("", "x") | take 1`,
			[]string{"T:timespan B:long D:real S:dynamic C:string", `"01:30:00" 5 24 ["a","b"] "x"`}},
	}
	for _, tt := range tests {
		r, err := run(t, tt.query, kql.Options{})
		if err != nil {
			t.Errorf("%s: %v", tt.query, err)
			continue
		}
		if diff := cmp.Diff(tt.want, render(r)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.query, diff)
		}
	}
}

func TestRowCap(t *testing.T) {
	for _, q := range []string{
		`DeviceEvents | project DeviceId`,
		`DeviceEvents | order by Score desc | project DeviceId`,
		`DeviceEvents | summarize by DeviceId, FileName | project DeviceId`,
	} {
		r, err := run(t, q, kql.Options{MaxRows: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Rows) != 3 || !r.Truncated {
			t.Errorf("%s: %d rows, truncated %v; want 3, true", q, len(r.Rows), r.Truncated)
		}
	}
	r, err := run(t, `DeviceEvents | order by Score desc | project Score`, kql.Options{MaxRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Score:real", "9", "7"}, render(r)); diff != "" {
		t.Errorf("a capped sort keeps the top rows (-want +got):\n%s", diff)
	}
	r, err = run(t, `DeviceEvents | take 8`, kql.Options{MaxRows: 8})
	if err != nil || r.Truncated {
		t.Errorf("exactly the cap: truncated %v, %v", r.Truncated, err)
	}
}

func TestHeldRowLimit(t *testing.T) {
	for _, q := range []string{
		`DeviceEvents | summarize count() by Timestamp`,
		`DeviceEvents | order by Timestamp | summarize count()`,
		`DeviceEvents | distinct Timestamp | count`,
	} {
		_, err := run(t, q, kql.Options{MaxHeldRows: 4})
		var le *kql.LimitError
		if !errors.As(err, &le) {
			t.Errorf("%s: got %v, want a LimitError", q, err)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		query  string
		syntax bool
		msg    string
	}{
		{`DeviceEvents | where FileName == "x`, true, "unterminated string"},
		{`DeviceEvents | wher FileName == "x"`, true, "unknown or unsupported tabular operator 'wher'"},
		{`DeviceEvents | where`, true, "expected an expression"},
		{`DeviceEvents | take -1`, true, "expected a row count"},
		{`| take 1`, true, "expected a table name"},
		{`DeviceEvents | where (FileName == "x"`, true, "expected ')'"},
		{`DeviceEvents | project a = `, true, "expected an expression"},
		{`DeviceEvents | where Timestamp > ago(1x)`, true, "invalid number"},
		{`DeviceEvents take 1`, true, "expected '|' or the end of the query"},
		{`DeviceEventz | take 1`, false, "Failed to resolve table or column expression named 'DeviceEventz'"},
		{`DeviceEvents | where Foo == 1`, false, "'where' operator: Failed to resolve scalar expression named 'Foo'"},
		{`DeviceEvents | project FileName | where DeviceId == "x"`, false, "'where' operator: Failed to resolve scalar expression named 'DeviceId'"},
		{`DeviceEvents | where FileName == 1`, false, "'where' operator: Cannot compare values of types string and long. Try adding explicit casts"},
		{`DeviceEvents | where foo(FileName)`, false, "'where' operator: Unknown function: 'foo'."},
		{`DeviceEvents | where count() > 1`, false, "can only be used in summarize"},
		{`DeviceEvents | summarize tolower(FileName)`, false, "'tolower' is not an aggregation function"},
		{`DeviceEvents | where FileName`, false, "must be a bool expression"},
		{`DeviceEvents | project FileName, FileName`, false, "projected more than once"},
		{`DeviceEvents | where FileName matches regex "("`, false, "invalid regular expression"},
		{`DeviceEvents | extend x = FileName + 1`, false, "cannot be applied to types string and long"},
		{`DeviceEvents | where Timestamp > "2024-01-01"`, false, "Cannot compare values of types datetime and string"},
	}
	pushed, _ := catalogs(t)
	for _, tt := range tests {
		_, err := kql.Run(t.Context(), pushed, tt.query, kql.Options{Now: now})
		var se *kql.SyntaxError
		var me *kql.SemanticError
		switch {
		case err == nil:
			t.Errorf("%s: no error", tt.query)
			continue
		case tt.syntax && !errors.As(err, &se), !tt.syntax && !errors.As(err, &me):
			t.Errorf("%s: %T %v, want syntax=%v", tt.query, err, err, tt.syntax)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: %q does not say %q", tt.query, err, tt.msg)
		}
	}
}

func TestPushdownFilter(t *testing.T) {
	var got kql.Filter
	cat := kql.NewCatalog()
	cat.Register(filterSpy{&got})
	for _, tt := range []struct {
		query                   string
		partition, from, to     bool
		partitionKeepsDeviceBB2 bool
	}{
		{`DeviceEvents | where DeviceName =~ "X" and Timestamp > ago(7d)`, true, true, false, false},
		{`DeviceEvents | where Timestamp between (datetime(2026-01-01) .. 1d) | where substring(DeviceId, 0, 1) in ("a", "b")`, true, true, true, true},
		{`DeviceEvents | where FileName == "x" or DeviceId == "bb02"`, false, false, false, false},
		{`DeviceEvents | project DeviceId | where DeviceId == "bb02"`, false, false, false, false},
		{`DeviceEvents | where ago(1d) < Timestamp and Timestamp <= now()`, false, true, true, false},
	} {
		got = kql.Filter{}
		if _, err := kql.Run(t.Context(), cat, tt.query, kql.Options{Now: now}); err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		if (got.Partition != nil) != tt.partition || got.From.IsZero() == tt.from || got.To.IsZero() == tt.to {
			t.Errorf("%s: partition %v from %v to %v", tt.query, got.Partition != nil, got.From, got.To)
		}
		if got.Partition != nil {
			probe := make([]kql.Value, len(eventCols))
			probe[1], probe[2] = kql.StringValue("bb02"), kql.StringValue("SRV-02")
			if got.Partition(probe) != tt.partitionKeepsDeviceBB2 {
				t.Errorf("%s: partition filter on bb02 = %v", tt.query, !tt.partitionKeepsDeviceBB2)
			}
		}
	}
}

// filterSpy records the filter a query hands to its table.
type filterSpy struct{ got *kql.Filter }

func (filterSpy) Name() string               { return "DeviceEvents" }
func (filterSpy) Columns() []kql.Column      { return eventCols }
func (filterSpy) PartitionColumns() []string { return []string{"DeviceId", "DeviceName"} }
func (s filterSpy) Scan(_ context.Context, f kql.Filter, _ func([]kql.Value) error) error {
	*s.got = f
	return nil
}

func TestFormatTimeSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                   "00:00:00",
		90 * time.Minute:                    "01:30:00",
		26*time.Hour + 500*time.Millisecond: "1.02:00:00.5000000",
		-time.Second:                        "-00:00:01",
		100:                                 "00:00:00.0000001",
	} {
		if got := kql.FormatTimeSpan(d); got != want {
			t.Errorf("FormatTimeSpan(%v) = %q, want %q", d, got, want)
		}
	}
}

func ExampleRun() {
	cat := kql.NewCatalog()
	cat.Register(kql.NewMemTable("DeviceInfo", []kql.Column{{"DeviceName", kql.String}, {"OSPlatform", kql.String}}, [][]kql.Value{
		{kql.StringValue("ws-01"), kql.StringValue("Windows11")},
		{kql.StringValue("srv-02"), kql.StringValue("WindowsServer2022")},
		{kql.StringValue("ws-03"), kql.StringValue("Windows11")},
	}))
	r, _ := kql.Run(context.Background(), cat, `DeviceInfo | summarize Devices = count() by OSPlatform | order by Devices desc`, kql.Options{})
	for _, row := range r.Rows {
		fmt.Println(row[0].S, row[1].I)
	}
	// Output:
	// Windows11 2
	// WindowsServer2022 1
}

func TestScanHints(t *testing.T) {
	var got kql.Filter
	cat := kql.NewCatalog()
	cat.Register(filterSpy{&got})
	for _, tt := range []struct {
		query string
		reads []string // nil: every column
		reuse bool
	}{
		{`DeviceEvents | where FileName == "x"`, nil, false},
		{`DeviceEvents | where FileName == "x" | project DeviceId`, []string{"DeviceId", "FileName"}, true},
		{`DeviceEvents | summarize arg_max(Timestamp, FileName) by DeviceId`, []string{"Timestamp", "DeviceId", "FileName"}, true},
		{`DeviceEvents | summarize count(), make_set(ActionType) by DeviceId`, []string{"DeviceId", "ActionType"}, true},
		{`DeviceEvents | extend x = RemotePort | order by Score | project FileName, x`, []string{"FileName", "RemotePort", "Score"}, true},
		{`DeviceEvents | project-rename F = FileName | sort by Score | take 1`, nil, false},
		{`DeviceEvents | where IsLocalAdmin | count`, []string{"IsLocalAdmin"}, true},
		{`DeviceEvents | project-away LoggedOnUsers`, []string{"Timestamp", "DeviceId", "DeviceName", "ActionType", "FileName", "ProcessCommandLine", "RemotePort", "IsLocalAdmin", "Score"}, true},
	} {
		got = kql.Filter{}
		if _, err := kql.Run(t.Context(), cat, tt.query, kql.Options{Now: now}); err != nil {
			t.Fatalf("%s: %v", tt.query, err)
		}
		var reads []string
		if got.Columns != nil {
			reads = []string{}
			for i, c := range eventCols {
				if got.Columns[i] {
					reads = append(reads, c.Name)
				}
			}
		}
		want := tt.reads
		if want != nil {
			want = sortedCopy(want)
			reads = sortedCopy(reads)
		}
		if diff := cmp.Diff(want, reads); diff != "" || got.Reuse != tt.reuse {
			t.Errorf("%s: reuse %v (want %v), columns read (-want +got):\n%s", tt.query, got.Reuse, tt.reuse, diff)
		}
	}
}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}

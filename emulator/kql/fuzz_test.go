package kql_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mdebridge/mdebridge/emulator/kql"
)

// FuzzQuery runs arbitrary text as a query. It must never panic; it either
// fails with one of the package's errors or runs, and a query that runs
// gives the same rows whether or not its where clauses were pushed down.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		`DeviceEvents | where DeviceId == "bb02" | project DeviceName, FileName`,
		`DeviceEvents|where FileName =~ 'powershell.exe'|where ProcessCommandLine contains 'appdata'|project FileName|limit 2`,
		`DeviceEvents | summarize arg_max(Timestamp, *) by DeviceId | project-away Score`,
		`DeviceEvents | summarize FirstSeen = min(Timestamp), Files = make_set(FileName, 3), c = countif(IsLocalAdmin) by bin(Timestamp, 1h)`,
		`DeviceEvents | where Timestamp between (ago(2d) .. 1d) and RemotePort in (445, 1433) | top 3 by Score asc nulls first`,
		`DeviceEvents | extend U = parse_json(LoggedOnUsers) | project u = U[0]["UserName"], n = array_length(U) | distinct *`,
		`DeviceEvents | where ProcessCommandLine matches regex "[a-z]+" and FileName !in~ ("X") | sort by Timestamp desc | take 2`,
		`DeviceEvents | project x = substring(DeviceName, -3, 200), y = 10 / 0, z = -5 % 3, t = datetime(2024-13-45), d = dynamic({"a":[1,2]})`,
		`DeviceEvents | where FileName == @"c:\x" or FileName == h'secret' | count`,
		`DeviceEvents | extend a = 1, b = a + 1 | project-rename c = b | summarize sum(c), avg(a) by DeviceId`,
	} {
		f.Add(s)
	}
	pushed, plain := catalogs(f)
	f.Fuzz(func(t *testing.T, query string) {
		opts := kql.Options{Now: now, MaxRows: 5, MaxHeldRows: 50}
		a, errA := kql.Run(t.Context(), pushed, query, opts)
		b, errB := kql.Run(t.Context(), plain, query, opts)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("pushdown changes the error: %v vs %v", errA, errB)
		}
		if errA != nil {
			var se *kql.SyntaxError
			var me *kql.SemanticError
			var le *kql.LimitError
			if !errors.As(errA, &se) && !errors.As(errA, &me) && !errors.As(errA, &le) {
				t.Fatalf("unexpected error type %T: %v", errA, errA)
			}
			return
		}
		if diff := cmp.Diff(render(b), render(a)); diff != "" {
			t.Fatalf("pushdown changes the result (-plain +pushed):\n%s", diff)
		}
		for _, row := range a.Rows {
			if len(row) != len(a.Columns) {
				t.Fatalf("a row of %d cells under %d columns", len(row), len(a.Columns))
			}
		}
	})
}

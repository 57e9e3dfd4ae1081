package odata_test

import (
	"testing"

	"github.com/mdebridge/mdebridge/emulator/odata"
)

// FuzzParseFilter holds the parser to two promises: it never panics, and
// whatever it accepts prints to text that parses back to the same tree.
// Compiling and evaluating the result must not panic either.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"riskScore eq 'High'",
		"healthStatus ne 'Active'",
		"lastSeen gt 2018-08-01Z",
		"lastUpdateTime ge 2019-11-22T00:00:00Z",
		"startswith(computerDnsName,'mymachine')",
		"machineTags/any(t: t eq 'x' or startswith(t,'y'))",
		"not (rbacGroupId eq 7) and aadDeviceId eq null",
		"computerDnsName eq 'O''Brien'",
		"x in (1,2.5,'a',null,true)",
		"a/b/all(v: not v eq 'q')",
		"((((a))))",
		"1e5bc9d7-e413-4dd7-902c-2932e418702b eq aadDeviceId",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		e, err := odata.ParseFilter(text)
		if err != nil {
			return
		}
		printed := e.String()
		again, err := odata.ParseFilter(printed)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", text, printed, err)
		}
		if again.String() != printed {
			t.Fatalf("%q printed as %q, which reprints as %q", text, printed, again.String())
		}
		if pred, err := schema.Compile(e); err == nil {
			for _, d := range devices {
				pred(d)
			}
		}
	})
}

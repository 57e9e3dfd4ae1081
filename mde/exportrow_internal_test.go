package mde

import (
	"testing"

	"github.com/mdebridge/mdebridge"
)

// BenchmarkDecodeVulnerabilityRow decodes a live-sized record with a
// decoder that has seen the file's repeating strings, as in an export.
func BenchmarkDecodeVulnerabilityRow(b *testing.B) {
	line := []byte(`{"id":"5afa3afc92a7c63d4b70129e0a6f33f63a427e21_google_chrome_131.0.6778.205_CVE-2026-21418","deviceId":"5afa3afc92a7c63d4b70129e0a6f33f63a427e21",` +
		`"rbacGroupName":"Workstations","deviceName":"cts-ws04417.corp.contoso.com","osPlatform":"Windows11","osVersion":"10.0.26100.2605","osArchitecture":"x64",` +
		`"softwareVendor":"google","softwareName":"chrome","softwareVersion":"131.0.6778.205","cveId":"CVE-2026-21418","vulnerabilitySeverityLevel":"High",` +
		`"recommendedSecurityUpdate":"193220","recommendedSecurityUpdateId":null,"recommendedSecurityUpdateUrl":null,` +
		`"diskPaths":["C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"],"registryPaths":["HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Google Chrome"],` +
		`"lastSeenTimestamp":"2026-11-20 05:12:44","firstSeenTimestamp":"2026-11-01 10:13:34","exploitabilityLevel":"NoExploit",` +
		`"recommendationReference":"va-_-google-_-chrome","securityUpdateAvailable":true,"cvssScore":8.8}`)
	d := newRowDecoder()
	var r mdebridge.MachineVulnerability
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if err := d.vulnerability(line, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 10-19/100", "bytes 0-0/*", "bytes -1/5", "", "bytes 5-2/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, size, ok := contentRange(s)
		if ok && (start < 0 || size != -1 && size <= start) {
			t.Fatalf("%q: start %d of %d accepted", s, start, size)
		}
	})
}

func FuzzParseExportTime(f *testing.F) {
	for _, s := range []string{"2020-12-30 14:17:26", "2021-01-11 09:47:58.854", "2020-11-03 10:13:34.8476880", "2021-02-31 00:00:00", "2021-01-11T09:47:58"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseExportTime([]byte(s))
		if !ok {
			return
		}
		// The fast path agrees with the general parser.
		want, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Fatalf("%q: fast %v, general %v (%v)", s, got, want, err)
		}
	})
}

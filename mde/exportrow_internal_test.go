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

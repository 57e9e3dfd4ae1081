package emulator

import (
	"testing"
	"time"
)

// A CVE published before its fix is tagged ZeroDay and NoSecurityUpdate
// until the fix is out, and has no tags after.
func TestCveTagsFollowTheFix(t *testing.T) {
	tn, _ := tvmTenant(t, 1, 0)
	tm := tn.tvm()
	checked := 0
	for _, c := range tm.cves {
		fix := tm.release(c.line, c.fixStep)
		if !c.published.Before(fix) {
			if got := tm.cveTags(c.line, c, c.published); got != nil {
				t.Fatalf("%s, published with its fix: tags %v", c.id, got)
			}
			continue
		}
		between := c.published.Add(fix.Sub(c.published) / 2)
		if got := tm.cveTags(c.line, c, between); len(got) != 2 || got[0] != "ZeroDay" || got[1] != "NoSecurityUpdate" {
			t.Fatalf("%s before its fix: tags %v", c.id, got)
		}
		if got := tm.cveTags(c.line, c, fix.Add(time.Second)); got != nil {
			t.Fatalf("%s after its fix: tags %v", c.id, got)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no CVE is published before its fix")
	}
}

func TestCPEName(t *testing.T) {
	for _, c := range []struct {
		os                         bool
		vendor, product, ver, want string
	}{
		{false, "google", "chrome", "131.0.6778.86", "cpe:2.3:a:google:chrome:131.0.6778.86:*:*:*:*:*:*:*"},
		{true, "microsoft", "windows_11", "10.0.26100.2314", "cpe:2.3:o:microsoft:windows_11:10.0.26100.2314:*:*:*:*:*:*:*"},
		{false, "notepad-plus-plus", "notepad++", "8.7.0", `cpe:2.3:a:notepad-plus-plus:notepad\+\+:8.7.0:*:*:*:*:*:*:*`},
		{false, "Vendor", "a b", "", `cpe:2.3:a:vendor:a\ b:*:*:*:*:*:*:*:*`},
	} {
		if got := cpeName(c.os, c.vendor, c.product, c.ver); got != c.want {
			t.Errorf("cpeName(%v, %q, %q, %q) = %q, want %q", c.os, c.vendor, c.product, c.ver, got, c.want)
		}
	}
}

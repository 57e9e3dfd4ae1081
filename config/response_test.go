package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/config"
)

func TestResponseSettings(t *testing.T) {
	c, err := config.Load(filepath.Join("testdata", "response.yaml"), true, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	r, in := c.Response, c.Indicators
	if r.Actor != "soc-automation" || time.Duration(r.WaitTimeout) != 30*time.Minute || r.Concurrency != 8 ||
		r.DownloadDir != filepath.Join("testdata", "evidence") || r.ResponderToken.Value() != "r3sp0nder-t0ken-do-not-print-0123" {
		t.Errorf("response: %+v", r)
	}
	if in.DefaultAction != "Block" || in.DefaultSeverity != "High" || time.Duration(in.DefaultExpiration) != 7*24*time.Hour {
		t.Errorf("indicators: %+v", in)
	}
	out, _ := c.Marshal()
	if strings.Contains(string(out), "r3sp0nder") {
		t.Error("the responder token was marshalled")
	}
	// Defaults, and the environment overlay.
	c, err = config.Load(filepath.Join("testdata", "good.yaml"), true, env(map[string]string{
		"MDEBRIDGE_RESPONSE_RESPONDER_TOKEN": "from-the-environment-0123456789", "MDEBRIDGE_INDICATORS_DEFAULT_EXPIRATION": "0s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Response.Concurrency != 4 || time.Duration(c.Response.WaitTimeout) != 10*time.Minute || c.Indicators.DefaultAction != "Audit" ||
		c.Response.ResponderToken.Value() != "from-the-environment-0123456789" || c.Indicators.DefaultExpiration != 0 {
		t.Errorf("defaults and overlay: %+v %+v", c.Response, c.Indicators)
	}
	_, err = config.Load(filepath.Join("testdata", "bad-response.yaml"), true, noEnv)
	for _, want := range []string{"response.wait_timeout", "response.concurrency", "response.responder_token: too short",
		`indicators.default_action: "Nuke"`, `indicators.default_severity: "Critical"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "short\"") {
		t.Error("the token's value is in the error")
	}
}

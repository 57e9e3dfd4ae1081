package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdebridge/mdebridge/config"
)

func TestLogonUserCalls(t *testing.T) {
	load := func(file string, vars map[string]string) (config.Config, error) {
		return config.Load(filepath.Join("testdata", file), true, env(vars))
	}
	c, err := load("good.yaml", nil)
	if err != nil || c.Sync.LogonUserCalls != 1500 {
		t.Errorf("default: %d, %v; want 1500", c.Sync.LogonUserCalls, err)
	}
	if c, err := load("logon-user-calls.yaml", nil); err != nil || c.Sync.LogonUserCalls != 300 {
		t.Errorf("from the file: %d, %v; want 300", c.Sync.LogonUserCalls, err)
	}
	if c, err := load("logon-user-calls.yaml", map[string]string{"MDEBRIDGE_SYNC_LOGON_USER_CALLS": "0"}); err != nil || c.Sync.LogonUserCalls != 0 {
		t.Errorf("from the environment: %d, %v; want 0", c.Sync.LogonUserCalls, err)
	}
	if _, err := load("logon-user-calls-negative.yaml", nil); err == nil || !strings.Contains(err.Error(), "sync.logon_user_calls: -1") {
		t.Errorf("a negative budget: %v", err)
	}
}

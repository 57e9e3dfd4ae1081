package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/config"
)

func TestExposureSettings(t *testing.T) {
	c, err := config.Load(filepath.Join("testdata", "exposure.yaml"), true, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Exposure
	if time.Duration(e.FullExportEvery) != 12*time.Hour || e.Via != "json" || e.ParallelDownloads != 3 || e.PageSize != 50000 || e.DeltaLimit != 100000 {
		t.Errorf("exposure settings not read: %+v", e)
	}
	c, err = config.Load(filepath.Join("testdata", "good.yaml"), true, env(map[string]string{"MDEBRIDGE_EXPOSURE_VIA": "json", "MDEBRIDGE_EXPOSURE_FULL_EXPORT_EVERY": "6h"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Exposure.Via != "json" || time.Duration(c.Exposure.FullExportEvery) != 6*time.Hour || c.Exposure.ParallelDownloads != 2 {
		t.Errorf("defaults or environment not applied: %+v", c.Exposure)
	}
	_, err = config.Load(filepath.Join("testdata", "exposure-bad.yaml"), true, noEnv)
	for _, want := range []string{"exposure.full_export_every: 10m0s is too short", `exposure.via: "carrier-pigeon"`, "exposure.parallel_downloads: 0", "exposure.page_size: 500000"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

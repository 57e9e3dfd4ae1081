package app

import (
	"time"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/config"
	"github.com/mdebridge/mdebridge/syncer"
)

// exposureSteps are the sync steps of vulnerabilities and software, in the
// order they run: the catalogue first, so that the vulnerability figures
// see its exploit flags.
func exposureSteps(c config.Exposure, src mdebridge.ExposureSource, store mdebridge.ExposureStore) []syncer.Step {
	o := syncer.ExposureOptions{FullEvery: time.Duration(c.FullExportEvery), Via: c.Via, DeltaLimit: c.DeltaLimit}
	return []syncer.Step{
		syncer.CVECatalogueStep{Source: src, Store: store, Options: o},
		syncer.VulnerabilitiesStep{Source: src, Store: store, Options: o},
		syncer.SoftwareStep{Source: src, Store: store, Options: o},
	}
}

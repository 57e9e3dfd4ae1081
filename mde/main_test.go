package mde_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The exports download files in goroutines of their own: none may outlive
// its export.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

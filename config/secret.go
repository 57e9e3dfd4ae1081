package config

import (
	"fmt"
	"log/slog"
	"time"

	"go.yaml.in/yaml/v3"
)

// Secret is a configuration value that must never be shown: it prints, logs
// and marshals as <redacted>. Value returns the real thing.
type Secret string

const redacted = "<redacted>"

// Value returns the secret itself, for the one place that needs it.
func (s Secret) Value() string { return string(s) }

func (s Secret) String() string   { return s.mask() }
func (s Secret) GoString() string { return s.mask() }

// Format makes every verb (%v, %s, %q, %x, %#v) print the mask.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, s.mask()) }

func (s Secret) LogValue() slog.Value { return slog.StringValue(s.mask()) }

func (s Secret) MarshalYAML() (any, error) { return s.mask(), nil }

func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.mask() + `"`), nil }

func (s Secret) MarshalText() ([]byte, error) { return []byte(s.mask()), nil }

func (s Secret) mask() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Duration is a time.Duration written as "90s", "15m", "1h" in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (like 30m or 1h)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d Duration) String() string { return time.Duration(d).String() }

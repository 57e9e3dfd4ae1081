package emulator

import (
	"testing"
	"time"
)

// The export APIs' skip tokens come back from clients: whatever they send,
// decoding fails cleanly or yields a usable position.
func FuzzDecodeSkipToken(f *testing.F) {
	var tok exportSkipToken
	tok.ExportDefinition.TimePath = "2021-01-11/1101/"
	tok.ExportFileIndex, tok.LineStoppedAt = 3, 5
	f.Add(tok.encode())
	f.Add("eyJFeHBvcnREZWZpbml0aW9uIjp7IlRpbWVQYXRoIjoiMjAyMS0wMS0xMS8xMTAxLyJ9LCJFeHBvcnRGaWxlSW5kZXgiOjAsIkxpbmVTdG9wcGVkQXQiOjV9")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, at, err := decodeSkipToken(s)
		if err != nil {
			return
		}
		if tok.ExportFileIndex < 0 || tok.LineStoppedAt < 0 || at.IsZero() {
			t.Fatalf("%q decoded to an unusable position %+v at %v", s, tok, at)
		}
	})
}

func FuzzParseSinceTime(f *testing.F) {
	for _, s := range []string{"2026-11-20T06:00:00Z", "2026-11-20", "2026-11-20T06:00", "2021-01-11T11:01:00.123+02:00", "yesterday"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := parseSinceTime(s); err == nil && got.Location() != time.UTC {
			t.Fatalf("%q parsed to a non-UTC time", s)
		}
	})
}

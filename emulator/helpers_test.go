package emulator_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

func decodeSegment(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode JWT segment: %v", err)
	}
	return b
}

func sortStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

package emulator_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// readFixture reads testdata/fixtures/<name> as objects: a collection's
// "value", a JSON Lines file's lines, or the single object.
func readFixture(t *testing.T, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if strings.HasSuffix(name, ".ndjson") {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			out = append(out, m)
		}
		return out
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if list, ok := obj["value"].([]any); ok {
		for _, v := range list {
			out = append(out, v.(map[string]any))
		}
		return out
	}
	delete(obj, "@odata.context")
	return []map[string]any{obj}
}

// sameShape holds objects the emulator served to the live ones: every key
// the live service sends is there (in the live order), with a JSON type the
// live service has been seen to send; what the live service sends with a
// value, the emulator sends with a value at least sometimes. (Key order is
// checked against the fixture's own order by the caller.)
func sameShape(t *testing.T, what string, live, got []map[string]any) {
	t.Helper()
	ls, gs := shape{}, shape{}
	for _, m := range live {
		ls.learn("", m)
	}
	for _, m := range got {
		delete(m, "@odata.context")
		gs.learn("", m)
		for path := range ls {
			if strings.ContainsAny(path, ".[") {
				continue
			}
			if _, ok := m[path]; !ok {
				t.Errorf("%s: an object lacks key %q", what, path)
			}
		}
	}
	var paths []string
	for p := range ls {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, path := range paths {
		seen := ls[path]
		for typ := range gs[path] {
			if !seen[typ] && !(typ != "null" && onlyNull(seen)) {
				t.Errorf("%s: %s: the emulator sends %s; the live service sends %v", what, path, typ, keys(seen))
			}
		}
		for typ := range seen {
			if typ != "null" && !gs[path][typ] {
				t.Errorf("%s: %s: the live service sends %s, the emulator never does (it sends %v)", what, path, typ, keys(gs[path]))
			}
		}
	}
}

// keyOrder returns the keys of raw that are in want, in raw's order.
func keyOrder(raw []byte, want []string) []string {
	var out []string
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		var skip json.RawMessage
		dec.Decode(&skip)
		if slices.Contains(want, k.(string)) {
			out = append(out, k.(string))
		}
	}
	return out
}

// rawOrder reads a fixture's first object's keys in file order.
func rawOrder(t *testing.T, name string) []string {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join("..", "testdata", "fixtures", name))
	if strings.HasSuffix(name, ".ndjson") {
		data, _, _ = bytes.Cut(data, []byte("\n"))
	}
	var obj struct{ Value []json.RawMessage }
	if json.Unmarshal(data, &obj) == nil && len(obj.Value) > 0 {
		data = obj.Value[0]
	}
	var keys []string
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		var skip json.RawMessage
		dec.Decode(&skip)
		if k.(string) != "@odata.context" {
			keys = append(keys, k.(string))
		}
	}
	return keys
}

// served fetches path and returns its objects (a collection's value or the
// entity) decoded and raw.
func served(t *testing.T, emu *emulatortest.Emu, tok, path string) ([]map[string]any, [][]byte) {
	t.Helper()
	resp, body := emu.Get(t, path, tok)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	var list struct {
		Value *[]json.RawMessage `json:"value"`
	}
	raws := [][]byte{body}
	if json.Unmarshal(body, &list) == nil && list.Value != nil {
		raws = raws[:0]
		for _, r := range *list.Value {
			raws = append(raws, r)
		}
	}
	var out []map[string]any
	for _, r := range raws {
		var m map[string]any
		json.Unmarshal(r, &m)
		out = append(out, m)
	}
	return out, raws
}

func TestResponseShapesMatchLive(t *testing.T) {
	clk := newClock()
	emu := emulatortest.New(t, emulatortest.WithMachines(3000), emulatortest.WithNow(clk.Now))
	tok := emu.AppToken(t)
	id := pickMachine(t, emu, tok, onlineWindows)
	postAction(t, emu, tok, id, "StopAndQuarantineFile", `{"Comment":"q","Sha1":"87662bc3d60e4200ceaf7aae249d1c343f4b83c9"}`)
	clk.Advance(time.Minute)

	check := func(what, fixture string, got []map[string]any, raws [][]byte) {
		t.Helper()
		live := readFixture(t, fixture)
		sameShape(t, what, live, got)
		order := rawOrder(t, fixture)
		for _, raw := range raws[:1] {
			if got := keyOrder(raw, order); !slices.Equal(got, order) {
				t.Errorf("%s: key order\n got %v\nwant %v (%s)", what, got, order, fixture)
			}
		}
	}
	got, raws := served(t, emu, tok, "/api/machineactions")
	check("machine actions", "peers/elastic-integrations/machine_actions.ndjson", got, raws)
	got, raws = served(t, emu, tok, "/api/indicators")
	check("indicators", "observed/get_indicators.json", got, raws)
	got, raws = served(t, emu, tok, "/api/investigations")
	check("investigations", "docs/investigations-list.json", got, raws)

	// Entities: a known and an unknown value each, so that both the
	// prevalent and the null forms show.
	var files struct {
		Value []struct{ IndicatorValue, IndicatorType string }
	}
	_, body := emu.Get(t, "/api/indicators?$filter="+url.QueryEscape("indicatorType eq 'FileSha256'"), tok)
	json.Unmarshal(body, &files)
	if len(files.Value) == 0 {
		t.Fatal("no file indicators to find a catalogued file by")
	}
	sha256 := files.Value[0].IndicatorValue
	got, raws = served(t, emu, tok, "/api/files/"+sha256)
	check("file", "observed/get_file_information.json", got, raws)
	sha1 := got[0]["sha1"].(string)
	var statsGot []map[string]any
	var statsRaw [][]byte
	for _, h := range []string{sha1, knownSha1(t, emu, tok)} {
		g, r := served(t, emu, tok, "/api/files/"+h+"/stats")
		statsGot, statsRaw = append(statsGot, g...), append(statsRaw, r...)
	}
	check("file stats", "observed/get_file_statistics.json", statsGot, statsRaw)
	statsGot, statsRaw = nil, nil
	for _, ip := range []string{"192.0.2.1", firstLastIP(t, emu, tok)} {
		g, r := served(t, emu, tok, "/api/ips/"+ip+"/stats")
		statsGot, statsRaw = append(statsGot, g...), append(statsRaw, r...)
	}
	check("ip stats", "observed/get_ip_statistics.json", statsGot, statsRaw)
	statsGot, statsRaw = nil, nil
	// An unknown domain has null dates, as an unknown IP has live; the
	// capture only shows a known domain, so only known ones are compared.
	for _, d := range []string{"microsoft.com", "office.com"} {
		g, r := served(t, emu, tok, "/api/domains/"+d+"/stats")
		statsGot, statsRaw = append(statsGot, g...), append(statsRaw, r...)
	}
	check("domain stats", "observed/get_domain_statistics.json", statsGot, statsRaw)
}

// knownSha1 is the SHA-1 of a file most Windows machines have.
func knownSha1(t *testing.T, emu *emulatortest.Emu, tok string) string {
	t.Helper()
	for _, f := range emu.Tenant().CatalogFiles() {
		if f.Name == "msedge.exe" {
			return f.SHA1
		}
	}
	t.Fatal("msedge.exe is not in the catalogue")
	return ""
}

func firstLastIP(t *testing.T, emu *emulatortest.Emu, tok string) string {
	t.Helper()
	resp, body := emu.Get(t, "/api/machines?$top=1&$select=lastIpAddress", tok)
	var l struct {
		Value []struct{ LastIPAddress string }
	}
	if json.Unmarshal(body, &l); resp.StatusCode != 200 || len(l.Value) == 0 {
		t.Fatal("no machine")
	}
	return l.Value[0].LastIPAddress
}

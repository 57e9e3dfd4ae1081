package emulator_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// shape collects, per key path, the JSON types the live service has been
// seen to send ("ipAddresses[].macAddress", "vmMetadata.vmId").
type shape map[string]map[string]bool

func (s shape) learn(prefix string, v any) {
	add := func(path, typ string) {
		if s[path] == nil {
			s[path] = map[string]bool{}
		}
		s[path][typ] = true
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			add(prefix+k, jsonType(x))
			s.learn(prefix+k+".", x)
		}
	case []any:
		for _, x := range v {
			s.learn(strings.TrimSuffix(prefix, ".")+"[].", x)
		}
	}
}

// liveMachines are the machines of the live captures: the observed
// get_machine(s), the JupiterOne recordings and Elastic's test data.
func liveMachines(t *testing.T) []map[string]any {
	t.Helper()
	dir := filepath.Join("..", "testdata", "fixtures")
	var out []map[string]any
	read := func(f string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, f := range []string{"observed/get_machine.json", "peers/graph-microsoft-endpoint-defender/GET_api_machines_6dd3f7ce_single.json"} {
		var m map[string]any
		if err := json.Unmarshal(read(f), &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		delete(m, "@odata.context")
		out = append(out, m)
	}
	for _, f := range []string{"observed/get_machines.json", "peers/graph-microsoft-endpoint-defender/GET_api_machines.json", "peers/graph-microsoft-endpoint-defender/GET_api_machines_top1_skip0.json"} {
		var list struct{ Value []map[string]any }
		if err := json.Unmarshal(read(f), &list); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, list.Value...)
	}
	sc := bufio.NewScanner(bytes.NewReader(read("peers/elastic-integrations/machines.ndjson")))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("machines.ndjson: %v", err)
			}
			out = append(out, m)
		}
	}
	return out
}

// TestMachineShapeMatchesLive holds generated machines to the live shape:
// every key the live service sends is there, with a JSON type it has been
// seen to have; null only where it has been seen null.
func TestMachineShapeMatchesLive(t *testing.T) {
	live := shape{}
	for _, m := range liveMachines(t) {
		live.learn("", m)
	}
	emu := emulatortest.New(t, emulatortest.WithMachines(3000))
	resp, body := emu.Get(t, "/api/machines?$top=3000", emu.AppToken(t))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var list struct{ Value []map[string]any }
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	got := shape{}
	for _, m := range list.Value {
		got.learn("", m)
		for path := range live {
			if strings.Contains(path, ".") || strings.Contains(path, "[]") {
				continue
			}
			if _, ok := m[path]; !ok {
				t.Fatalf("machine %v lacks key %q", m["id"], path)
			}
		}
	}
	var paths []string
	for p := range live {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, path := range paths {
		seen := live[path]
		for typ := range got[path] {
			if !seen[typ] && !(typ != "null" && onlyNull(seen)) {
				t.Errorf("%s: the emulator sends %s; the live service sends %v", path, typ, keys(seen))
			}
		}
		// What the live service sends with a value, the emulator sends with
		// a value at least sometimes.
		for typ := range seen {
			if typ != "null" && !got[path][typ] {
				t.Errorf("%s: the live service sends %s, the emulator never does (it sends %v)", path, typ, keys(got[path]))
			}
		}
	}
}

func onlyNull(types map[string]bool) bool { return len(types) == 1 && types["null"] }

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

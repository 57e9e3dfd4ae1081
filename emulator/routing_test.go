package emulator_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mdebridge/mdebridge/emulator/emulatortest"
)

func TestRoutesAreCaseInsensitiveAndVersioned(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(3))
	tok := emu.AppToken(t)
	id := getPage(t, emu, "/api/machines?$top=1", tok).Value[0].ID
	for _, path := range []string{
		"/api/machines", "/API/Machines", "/api/v1.0/machines", "/Api/V1.0/MACHINES/", "/api/machines?$TOP=2",
		"/api/machines/" + id, "/api/v1.0/Machines/" + strings.ToUpper(id),
	} {
		resp, body := emu.Get(t, path, tok)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		if v := resp.Header.Get("OData-Version"); v != "4.0" {
			t.Errorf("%s: OData-Version %q", path, v)
		}
	}
}

func TestUnknownRouteIs404WithEmptyBody(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(1))
	tok := emu.AppToken(t)
	for _, path := range []string{"/api/nosuch", "/api/machines/x/y/z", "/subscriptions/123/providers", "/v1.0/organization", "/", "/_emulator/nosuch"} {
		resp, body := emu.Get(t, path, tok)
		if resp.StatusCode != 404 || len(body) != 0 || resp.Header.Get("Content-Length") != "0" {
			t.Errorf("%s: %d Content-Length=%q body=%q; want 404 with an empty body", path, resp.StatusCode, resp.Header.Get("Content-Length"), body)
		}
	}
	if st := emu.Stats(); len(st.Calls) != 1 { // the token call only
		t.Errorf("unknown routes counted: %v", st.Calls)
	}
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(1))
	tok := emu.AppToken(t)
	for path, allow := range map[string]string{
		"/api/machines": "GET",
		// Every route the path matches, as ASP.NET's endpoint routing lists them.
		"/api/machines/AddOrRemoveTagForMultipleMachines": "GET, PATCH, POST",
		"/" + emu.TenantID() + "/oauth2/v2.0/token":       "POST",
	} {
		resp, body := emu.Do(t, "DELETE", path, tok, "")
		if resp.StatusCode != 405 || len(body) != 0 || resp.Header.Get("Allow") != allow {
			t.Errorf("DELETE %s: %d Allow=%q body=%q; want 405 Allow %s", path, resp.StatusCode, resp.Header.Get("Allow"), body, allow)
		}
	}
}

func TestResponsesEchoHostAndCompress(t *testing.T) {
	emu := emulatortest.New(t, emulatortest.WithMachines(30))
	tok := emu.AppToken(t)
	for _, enc := range []string{"", "gzip", "deflate", "gzip, deflate", "identity", "deflate;q=0, gzip"} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", emu.URL+"/api/machines", nil)
		req.Host = "api.security.microsoft.com"
		req.Header.Set("Authorization", "Bearer "+tok)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		resp, err := emu.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		want := map[string]string{"": "", "gzip": "gzip", "deflate": "deflate", "gzip, deflate": "deflate", "identity": "", "deflate;q=0, gzip": "gzip"}[enc]
		switch got := resp.Header.Get("Content-Encoding"); {
		case enc == "" && resp.Uncompressed:
			body = raw // Go's transport asked for gzip and undid it
		case got != want:
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", enc, got, want)
			continue
		case got == "gzip":
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			body, err = io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
		case got == "deflate":
			body, err = io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
			if err != nil {
				t.Fatalf("deflate body is not raw DEFLATE: %v", err)
			}
		default:
			body = raw
		}
		if !strings.HasPrefix(string(body), `{"@odata.context":"https://api.security.microsoft.com/api/$metadata#Machines","value":[{"id":"`) {
			t.Errorf("Accept-Encoding %q: body starts %.100q", enc, body)
		}
	}
}

package app

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/hunting"
)

const huntSynopsis = `hunt 'KQL' | hunt -f FILE | hunt --list | hunt --run NAME [--device X] [--user U] [--file F]
       [--sha1 H] [--sha256 H] [--md5 H] [--ip IP] [--domain D] [--since 7d] [--limit N] [--show-query] [-o table|json|jsonl|csv]`

func cmdHunt(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("hunt", flag.ContinueOnError)
	file := fs.String("f", "", "read the query from this file (- for standard input)")
	list := fs.Bool("list", false, "list the named queries")
	name := fs.String("run", "", "run a named query (see --list)")
	var p hunting.Params
	fs.StringVar(&p.Device, "device", "", "named queries: the device (computer name, its host part, or device id)")
	fs.StringVar(&p.User, "user", "", `named queries: the account (name or domain\name)`)
	fs.StringVar(&p.File, "file", "", "named queries: the file name")
	fs.StringVar(&p.SHA1, "sha1", "", "named queries: the file's SHA1")
	fs.StringVar(&p.SHA256, "sha256", "", "named queries: the file's SHA256")
	fs.StringVar(&p.MD5, "md5", "", "named queries: the file's MD5")
	fs.StringVar(&p.IP, "ip", "", "named queries: the remote IP address")
	fs.StringVar(&p.Domain, "domain", "", "named queries: a domain or URL fragment")
	since := fs.String("since", "", "named queries: how far back, e.g. 7d (default), 12h, 30d at most")
	fs.IntVar(&p.Limit, "limit", 0, "named queries: rows at most (default 100)")
	show := fs.Bool("show-query", false, "print the KQL to stderr before running it")
	out := fs.String("o", "table", "output: table, json, jsonl or csv")
	if ok, code := parseFlags(fs, env, g, args, huntSynopsis); !ok {
		return code
	}
	if err := checkFormat("hunt", *out); err != nil {
		return usageError(env, "hunt", "%v", err)
	}
	modes := 0
	for _, on := range []bool{fs.NArg() > 0, *file != "", *list, *name != ""} {
		if on {
			modes++
		}
	}
	if modes != 1 || fs.NArg() > 1 {
		return usageError(env, "hunt", "give one query: as an argument, with -f FILE, or --run NAME (or --list)")
	}
	named := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "device", "user", "file", "sha1", "sha256", "md5", "ip", "domain", "since", "limit":
			named = true
		}
	})
	if named && *name == "" {
		return usageError(env, "hunt", "--device, --user, --file, --since and the other filters are for named queries (--run NAME); write them into your own query")
	}
	if *list {
		return huntList(env, *out)
	}
	var query string
	if *name != "" {
		if *since != "" {
			d, err := hunting.ParseSince(*since)
			if err != nil {
				return usageError(env, "hunt", "%v", err)
			}
			p.Since = d
		}
		var err error
		if query, err = hunting.Named(*name, p); err != nil {
			if errors.As(err, new(*mdebridge.NotFoundError)) {
				return usageError(env, "hunt", "%v (hunt --list shows them all)", err)
			}
			return usageError(env, "hunt", "%v", err)
		}
	} else {
		query = fs.Arg(0)
		if *file != "" {
			data, err := readQueryFile(env, *file)
			if err != nil {
				return fail(env, "hunt", err)
			}
			query = data
		}
	}
	if *show {
		fmt.Fprintln(env.Stderr, query)
	}
	a, err := newApp(env, g, "warn")
	if err != nil {
		return fail(env, "hunt", err)
	}
	defer a.Close()
	client, err := a.MDE()
	if err != nil {
		return fail(env, "hunt", err)
	}
	res, err := hunting.Run(ctx, client, query)
	var pe *hunting.ParamError
	if errors.As(err, &pe) {
		return usageError(env, "hunt", "%v", err)
	}
	if err != nil {
		return fail(env, "hunt", err)
	}
	if err := writeHuntingResult(env.Stdout, *out, res); err != nil {
		return fail(env, "hunt", err)
	}
	switch {
	case res.Truncated:
		fmt.Fprintf(env.Stderr, "(%s rows, the most advanced hunting returns: more may have matched; narrow the query)\n", thousands(len(res.Results)))
	case len(res.Results) == 0 && *out == "table":
		fmt.Fprintln(env.Stderr, "(no rows)")
	}
	return ExitOK
}

// maxQueryFile bounds a query file.
const maxQueryFile = hunting.MaxQueryLength

func readQueryFile(env *Env, path string) (string, error) {
	var r io.Reader
	if path == "-" {
		r = env.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("query file: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxQueryFile+1))
	if err != nil {
		return "", fmt.Errorf("query file: %w", err)
	}
	if len(data) > maxQueryFile {
		return "", fmt.Errorf("query file %s is longer than %d bytes", path, maxQueryFile)
	}
	return string(data), nil
}

func huntList(env *Env, out string) int {
	lib := hunting.Library()
	switch out {
	case "json":
		writeJSON(env.Stdout, lib)
	case "jsonl":
		for _, q := range lib {
			b, _ := json.Marshal(q)
			fmt.Fprintf(env.Stdout, "%s\n", b)
		}
	default:
		cols := []column[hunting.Query]{
			{"NAME", func(q hunting.Query) string { return q.Name }},
			{"TABLE", func(q hunting.Query) string { return q.Table }},
			{"PARAMETERS", func(q hunting.Query) string {
				ps := append([]string{"device"}, q.Params...)
				for i, p := range ps {
					if len(q.NeedsOneOf) > 0 && strings.Contains(strings.Join(q.NeedsOneOf, ","), p) {
						ps[i] = p + "*"
					}
				}
				return strings.Join(ps, ",")
			}},
			{"DESCRIPTION", func(q hunting.Query) string { return q.Description }},
		}
		if out == "csv" {
			writeCSV(env.Stdout, cols, lib)
			break
		}
		writeTable(env.Stdout, cols, lib)
		fmt.Fprintln(env.Stderr, "(* one of the starred parameters is required; every query also takes --since and --limit)")
	}
	return ExitOK
}

// writeHuntingResult prints rows: JSON as the service sent them, a table
// or CSV with the schema's columns.
func writeHuntingResult(w io.Writer, format string, res *mdebridge.HuntingResult) error {
	switch format {
	case "json":
		return writeRawArray(w, res.Results)
	case "jsonl":
		return writeRawLines(w, res.Results)
	}
	names := make([]string, len(res.Schema))
	for i, c := range res.Schema {
		names[i] = c.Name
	}
	rows := make([][]string, len(res.Results))
	for i, raw := range res.Results {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return fmt.Errorf("row %d: %w", i+1, err)
		}
		rows[i] = make([]string, len(names))
		for j, n := range names {
			rows[i][j] = cellText(obj[n])
		}
	}
	cols := make([]column[[]string], len(names))
	for j, n := range names {
		cols[j] = column[[]string]{n, func(r []string) string { return r[j] }}
	}
	if format == "csv" {
		// The header is the schema's names, as they are.
		cw := csv.NewWriter(w)
		cw.Write(names)
		for _, r := range rows {
			rec := make([]string, len(r))
			for i, v := range r {
				rec[i] = csvSafe(v)
			}
			cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	}
	for j := range cols {
		get := cols[j].get
		cols[j].get = func(r []string) string { return clip(get(r), 100) }
	}
	return writeTable(w, cols, rows)
}

// cellText renders a JSON value for a table or CSV cell: strings without
// their quotes, null as nothing, anything else as compact JSON.
func cellText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// clip shortens s to at most n runes for a table cell.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

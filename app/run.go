// Package app is mdebridge's composition root: the only package that imports
// every adapter (azure, mde, sqlite, syncer, web, emulator). It turns the
// command line and the configuration into wired services and runs one
// command. Each subcommand lives in its own file as a function of
// (ctx, env, args) so tests call them directly.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/mdebridge/mdebridge/sqlite"
)

// Exit codes are part of the CLI contract.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // failure
	ExitUsage   = 2 // bad command line
	ExitPartial = 3 // some steps failed; what succeeded is kept
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// IsTerminal reports whether w is an interactive terminal (for progress
	// display); nil means never.
	IsTerminal func(w io.Writer) bool
	// Ready, when set, is told the address a server command listens on
	// once it accepts connections (used by tests and the benchmark).
	Ready func(name, addr string)
}

func (e *Env) terminal(w io.Writer) bool { return e.IsTerminal != nil && e.IsTerminal(w) }

// OSEnv is the Env of the real process.
func OSEnv() *Env {
	return &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, IsTerminal: isTerminal}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, g *globals, args []string) int
}

func commands() []command {
	return []command{
		{"demo", "start an emulated tenant, sync it and serve the API (try this first)", cmdDemo},
		{"sync", "sync MDE into the store once", cmdSync},
		{"status", "last sync of each step and what the store holds", cmdStatus},
		{"machines", "list or show synced machines and who logs on to them", cmdMachines},
		{"vulns", "list or show vulnerabilities (CVEs) found on machines", cmdVulns},
		{"software", "list or show installed software", cmdSoftware},
		{"hunt", "run an advanced hunting query, or one of the named ones", cmdHunt},
		{"alerts", "list, show or update the alerts the incident pipeline ingested", cmdAlerts},
		{"incidents", "list, show, update or comment on incidents (changes go to MDE)", cmdIncidents},
		{"doctor", "test the connection: token, reachability, permissions per feature", cmdDoctor},
		{"isolate", "isolate machines from the network", respondCommand("isolate")},
		{"unisolate", "release machines from isolation", respondCommand("unisolate")},
		{"scan", "run an antivirus scan", respondCommand("scan")},
		{"collect", "collect an investigation package (and download it)", respondCommand("collect")},
		{"restrict", "restrict code execution to Microsoft-signed code", respondCommand("restrict")},
		{"unrestrict", "lift the code execution restriction", respondCommand("unrestrict")},
		{"quarantine-file", "stop a file's processes and quarantine it", respondCommand("quarantine-file")},
		{"offboard", "offboard machines from MDE", respondCommand("offboard")},
		{"live-response", "run live response commands (and download results)", respondCommand("live-response")},
		{"tag", "add or remove a machine tag", respondCommand("tag")},
		{"investigate", "start an automated investigation", respondCommand("investigate")},
		{"actions", "list, show or cancel machine actions; bulk jobs", cmdActions},
		{"indicators", "list, add, update, delete or import custom indicators", cmdIndicators},
		{"enrich", "what MDE knows of a file, IP, domain, URL or user", cmdEnrich},
		{"audit", "the audit log of response requests", cmdAudit},
		{"serve", "run the scheduler and the REST API", cmdServe},
		{"emulate", "serve the emulated Microsoft cloud over TLS", cmdEmulate},
		{"bench", "measure a sync, or alert-to-event latency and bursts, against an emulated tenant", cmdBench},
		{"version", "print the version", cmdVersion},
	}
}

// globals are the options every command accepts.
type globals struct {
	config   string
	logLevel string
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "config", g.config, "configuration file (default $MDEBRIDGE_CONFIG or ./mdebridge.yaml)")
	fs.StringVar(&g.logLevel, "log-level", g.logLevel, "log level: debug, info, warn, error (default: the configuration's for serve, warn otherwise)")
}

// Run runs the command line args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, env *Env, args []string) int {
	g := &globals{}
	fs := flag.NewFlagSet("mdebridge", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(env.Stdout)
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "mdebridge: %v\n", err)
		usage(env.Stderr)
		return ExitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage(env.Stderr)
		return ExitUsage
	}
	name := rest[0]
	if name == "help" || name == "-h" || name == "--help" {
		usage(env.Stdout)
		return ExitOK
	}
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == name })
	if i < 0 {
		fmt.Fprintf(env.Stderr, "mdebridge: unknown command %q\n", name)
		usage(env.Stderr)
		return ExitUsage
	}
	return commands()[i].run(ctx, env, g, rest[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: mdebridge [--config FILE] [--log-level LEVEL] <command> [options]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'mdebridge <command> -h' for a command's options. Exit codes: 0 ok, 1 failure, 2 usage, 3 partial.")
}

// parseFlags parses a subcommand's flags (globals included) and reports a
// usage error the same way for every command. ok is false when the caller
// should return code.
func parseFlags(fs *flag.FlagSet, env *Env, g *globals, args []string, synopsis string) (ok bool, code int) {
	g.register(fs)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := parseInterspersed(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printFlags(env.Stdout, fs, synopsis)
			return false, ExitOK
		}
		fmt.Fprintf(env.Stderr, "mdebridge %s: %v\n", fs.Name(), err)
		printFlags(env.Stderr, fs, synopsis)
		return false, ExitUsage
	}
	return true, 0
}

// verb is one subcommand of a noun ("machines list").
type verb struct {
	name string
	run  func(context.Context, *Env, *globals, []string) int
}

// subcommand dispatches "<noun> <verb> ...": -h prints usage, a missing or
// unknown verb is a usage error listing the verbs.
func subcommand(ctx context.Context, env *Env, g *globals, noun string, args []string, usage string, verbs ...verb) int {
	names := make([]string, len(verbs))
	for i, v := range verbs {
		names[i] = v.name
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(env.Stdout, usage)
			return ExitOK
		}
		return usageError(env, noun, "say what to do: %s", strings.Join(names, ", "))
	}
	for _, v := range verbs {
		if v.name == args[0] {
			return v.run(ctx, env, g, args[1:])
		}
	}
	return usageError(env, noun, "unknown subcommand %q (%s)", args[0], strings.Join(names, ", "))
}

// openStore loads the configuration and opens the store for a reading
// command.
func openStore(ctx context.Context, env *Env, g *globals) (*App, *sqlite.DB, error) {
	a, err := newApp(env, g, "warn")
	if err != nil {
		return nil, nil, err
	}
	store, err := a.Store(ctx)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, store, nil
}

// parseShow parses the flags of a show command: fs's own, -o table|json
// and exactly one key (what naming one means is missing says). It returns
// the key and the output format, or ok false and the exit code.
func parseShow(fs *flag.FlagSet, env *Env, g *globals, args []string, synopsis, missing string) (key, out string, ok bool, code int) {
	o := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, synopsis); !ok {
		return "", "", false, code
	}
	if err := checkFormat(fs.Name(), *o, "table", "json"); err != nil {
		return "", "", false, usageError(env, fs.Name(), "%v", err)
	}
	if fs.NArg() != 1 {
		return "", "", false, usageError(env, fs.Name(), "%s", missing)
	}
	return fs.Arg(0), *o, true, 0
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments ("machines show NAME -o json"), as users type them; after "--"
// everything is positional. fs.Args() then holds the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	var tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append(append([]string{"--"}, pos...), tail...))
}

func printFlags(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: mdebridge %s\n\nOptions:\n", synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// usageError prints a usage problem found after flag parsing.
func usageError(env *Env, cmd, format string, args ...any) int {
	fmt.Fprintf(env.Stderr, "mdebridge %s: %s\n", cmd, fmt.Sprintf(format, args...))
	fmt.Fprintf(env.Stderr, "Run 'mdebridge %s -h' for its options.\n", cmd)
	return ExitUsage
}

// fail prints err as one clear line (plus what to do, when known) and
// returns ExitFailure.
func fail(env *Env, cmd string, err error) int {
	fmt.Fprintf(env.Stderr, "mdebridge %s: %s\n", cmd, describe(err))
	return ExitFailure
}

// newLogger builds the logger of a command: level from the flag, else
// fallback; text on stderr unless the configuration asks for JSON.
func newLogger(env *Env, g *globals, fallback, format string) (*slog.Logger, error) {
	level := g.logLevel
	if level == "" {
		level = fallback
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(env.Stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(env.Stderr, opts)), nil
}

// Version returns the module version and VCS revision the binary was built from.
func Version() (version, revision string) {
	version, revision = "(devel)", ""
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	return
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

package app

import (
	"context"
	"flag"
	"fmt"
	"runtime"
)

func cmdVersion(ctx context.Context, env *Env, g *globals, args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	out := fs.String("o", "table", "output: table or json")
	if ok, code := parseFlags(fs, env, g, args, "version [-o table|json]"); !ok {
		return code
	}
	if err := checkFormat("version", *out, "table", "json"); err != nil {
		return usageError(env, "version", "%v", err)
	}
	v, rev := Version()
	if *out == "json" {
		writeJSON(env.Stdout, map[string]string{"version": v, "revision": rev, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH})
		return ExitOK
	}
	fmt.Fprintf(env.Stdout, "mdebridge %s", v)
	if rev != "" {
		fmt.Fprintf(env.Stdout, " (%s)", rev)
	}
	fmt.Fprintf(env.Stdout, " %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return ExitOK
}

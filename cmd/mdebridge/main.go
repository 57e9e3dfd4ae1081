// Command mdebridge connects an organisation to Microsoft Defender for
// Endpoint. See README.md, or run `mdebridge help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mdebridge/mdebridge/app"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, app.OSEnv(), os.Args[1:])
}

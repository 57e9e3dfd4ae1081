package app

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mdebridge/mdebridge"
	"github.com/mdebridge/mdebridge/mde"
)

// permissionFix says how to grant a missing MDE application permission.
const permissionFix = "grant it in Entra ID > App registrations > your app > API permissions > Add a permission > " +
	"APIs my organization uses > WindowsDefenderATP > Application permissions, then Grant admin consent"

// describe turns an error into the one line shown to a user: the cause and,
// when known, how to fix it. Details stay in the log.
func describe(err error) string {
	var ae *mdebridge.AuthError
	var pe *mdebridge.PermissionError
	var busy *mdebridge.RunInProgressError
	var amb *mdebridge.AmbiguousError
	var nf *mdebridge.NotFoundError
	var opErr *net.OpError
	switch {
	case errors.As(err, &ae):
		return ae.Error()
	case errors.As(err, &pe):
		if len(pe.Missing) > 0 {
			return fmt.Sprintf("%s; %s", pe.Error(), permissionFix)
		}
		return pe.Error()
	case errors.As(err, &busy):
		return busy.Error() + "; wait for it to finish, or stop the process that runs it"
	case errors.As(err, &amb), errors.As(err, &nf):
		return err.Error()
	case errors.As(err, new(*mdebridge.HuntingQuotaError)):
		return err.Error() + "; the quota is per tenant and shared with every tool that hunts: try again then, or narrow the query (a shorter time range, one device)"
	case errors.Is(err, mde.ErrThrottled):
		return err.Error() + "; the service's rate limit was reached, try again in a few minutes"
	case errors.As(err, &opErr):
		msg := err.Error()
		if strings.Contains(msg, "connection refused") {
			return msg + "; is the service (or the emulator) running at that address?"
		}
		return msg
	case strings.Contains(err.Error(), "x509:") || strings.Contains(err.Error(), "tls:"):
		return err.Error() + "; if the service uses a private CA (the emulator does), set azure.ca_file to it"
	}
	return err.Error()
}

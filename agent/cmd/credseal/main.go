// Command credseal is the portal's side of credagent deliveries: it opens a
// .pfx, seals it to a machine or a machine group, signs it with the portal
// key, and drops it into an agent's inbox. It also makes signing keys, group
// keys, and store, credential and revoke deliveries. The logic lives in
// agent/delivery and agent/delivery/portal; this file only parses flags.
//
// Passwords are read from --password-file or from standard input, never from
// the command line (where ps and shell history would see them).
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: credseal COMMAND [flags]

commands:
  keygen      make a portal signing key pair (PEM): --out BASE [--alg ed25519|p256]
  group-key   deliver a machine group's private key to a machine
              (--new makes the group key pair first)
  app         seal a .pfx/.p12 to a machine or group
  store       a CCP store delivery
  credential  a credential delivery
  revoke      revoke an application, group-key, store or credential
  publish     put delivery files into a feed tree (a static tree any web
              server can serve), or --refresh its manifests; every delivery
              command also takes --feed DIR to seal straight into a feed

Run "credseal COMMAND -h" for a command's flags.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(*env, []string) error{
		"keygen":     cmdKeygen,
		"group-key":  cmdGroupKey,
		"app":        cmdApp,
		"store":      cmdStore,
		"credential": cmdCredential,
		"revoke":     cmdRevoke,
		"publish":    cmdPublish,
	}
	fn, ok := cmds[args[0]]
	if !ok {
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "credseal: unknown command %q\n%s", args[0], usage)
		return 2
	}
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if err := fn(e, args[1:]); err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintf(stderr, "credseal %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

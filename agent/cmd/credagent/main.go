// Command credagent is the machine-side credential agent: it holds the
// machine key, applies sealed deliveries from the portal, and hands
// credentials to the local flow runner over a local socket.
//
// main stays thin: each subcommand lives in its own file and registers itself
// in the commands table; the logic is in importable packages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	name    string
	summary string // one line for the command list
	usage   string // "credagent NAME [flags] ..." plus an example
	// run gets the flag set (already parsed) and the remaining args.
	flags func(fs *flag.FlagSet)
	run   func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
	// quiet: the error is not printed (exec passing on its command's exit
	// code, which the command has explained itself).
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				printUsage(stderr, c)
				return 0
			}
		}
		printCommands(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "credagent: unknown command %q\n\n", args[0])
		printCommands(stderr)
		return 2
	}
	fs := flag.NewFlagSet("credagent "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(stderr, c); fs.PrintDefaults() }
	if c.flags != nil {
		c.flags(fs)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := c.run(fs.Args(), stdout, stderr); err != nil {
		var ee *exitError
		if !errors.As(err, &ee) || !ee.quiet {
			fmt.Fprintf(stderr, "credagent %s: %v\n", c.name, err)
		}
		if ee != nil {
			return ee.code
		}
		return 1
	}
	return 0
}

func printCommands(w io.Writer) {
	fmt.Fprintln(w, "credagent: the machine-side credential agent for desktop flows.")
	fmt.Fprintln(w, "\nUsage: credagent COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'credagent COMMAND --help' for a command's flags and an example.")
}

func printUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "credagent %s: %s\n\n%s\n\n", c.name, c.summary, strings.TrimSpace(c.usage))
}

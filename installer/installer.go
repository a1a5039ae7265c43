// Package installer holds what the packages install besides the binary: the
// systemd unit and the default config, embedded so that `credagent install`
// writes exactly the files the .deb, .rpm and MSI ship.
//
// The directory also holds the package definitions themselves (nfpm.yaml,
// windows/credagent.wxs, the maintainer scripts), built by
// scripts/package.sh, and the tests that build and inspect those packages.
package installer

import (
	_ "embed"
	"strings"
)

// SystemdUnit is installer/systemd/credagent.service.
//
//go:embed systemd/credagent.service
var SystemdUnit string

// DefaultConfig is installer/config/config.yaml: every key commented out, so
// it loads as the defaults of the operating system it is on.
//
//go:embed config/config.yaml
var DefaultConfig string

// UnitExecPath is the binary the shipped unit starts.
const UnitExecPath = "/usr/bin/credagent"

// SystemdUnitFor returns the unit with ExecStart naming exe and args instead
// of the packaged /usr/bin/credagent command line. The rest of the unit (the
// hardening in particular) is unchanged.
func SystemdUnitFor(exe string, args []string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(SystemdUnit, "\n") {
		if strings.HasPrefix(line, "ExecStart=") {
			b.WriteString("ExecStart=" + SystemdCommandLine(exe, args) + "\n")
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// SystemdCommandLine quotes exe and args for ExecStart=. A word with
// whitespace, quotes, backslashes, '$' or '%' is double-quoted with those
// escaped, as systemd.service(5) "Command lines" describes.
func SystemdCommandLine(exe string, args []string) string {
	words := append([]string{exe}, args...)
	for i, w := range words {
		words[i] = systemdQuote(w)
	}
	return strings.Join(words, " ")
}

func systemdQuote(w string) string {
	// '%' starts a specifier and '$' a variable expansion, anywhere.
	w = strings.ReplaceAll(w, "%", "%%")
	w = strings.ReplaceAll(w, "$", "$$")
	if w != "" && !strings.ContainsAny(w, " \t\n\"'\\;") {
		return w
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(w) + `"`
}

// ParseExecStart returns the command line of the first ExecStart= in a unit
// file, split into words by the same quoting SystemdCommandLine produces, with
// any "-@:+!" prefixes dropped. ok is false when there is none.
func ParseExecStart(unit string) (words []string, ok bool) {
	for _, line := range strings.Split(unit, "\n") {
		line = strings.TrimSpace(line)
		v, found := strings.CutPrefix(line, "ExecStart=")
		if !found || v == "" {
			continue
		}
		v = strings.TrimLeft(v, "-@:+!")
		return splitSystemdWords(v), true
	}
	return nil, false
}

func splitSystemdWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case 'n':
				cur.WriteByte('\n')
			case 't':
				cur.WriteByte('\t')
			default:
				cur.WriteByte(s[i])
			}
			inWord = true
		case c == '%' && i+1 < len(s) && s[i+1] == '%', c == '$' && i+1 < len(s) && s[i+1] == '$':
			cur.WriteByte(c)
			i++
			inWord = true
		case quote == 0 && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

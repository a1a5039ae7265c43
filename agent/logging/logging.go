// Package logging builds the agent's two log streams with zerolog: the
// operational log and the audit stream.
//
// The operational log is JSON (to a file, or to standard error where systemd
// sends it to the journal), or human console output in dev mode. The audit
// stream carries one JSON record per resolution and never a secret; it goes
// to its own file when one is configured, otherwise to the operational
// destination with "stream":"audit" so that it can be filtered.
//
// Nothing here redacts: secrets are kept out of logs by their type
// (agent/secret) and by never logging query strings. The end-to-end tests
// scan every log for planted secrets to prove it.
package logging

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/logfile"
	"github.com/rs/zerolog"
)

// FileOpener opens a size-rotating log file. The daemon passes the one from
// platform/logfile; tests may pass a plain file opener.
type FileOpener func(path string, maxBytes int64, maxFiles int) (io.WriteCloser, error)

// Logs holds both streams and closes what they opened.
type Logs struct {
	Log     zerolog.Logger
	Audit   zerolog.Logger
	closers []io.Closer
}

// Close closes any files opened for the logs.
func (l *Logs) Close() error {
	var first error
	for _, c := range l.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// New builds the streams from cfg. stderr is where logs go when no file is
// configured. open is used for files; nil means plain append-only files
// without rotation.
func New(cfg config.Log, stderr io.Writer, open FileOpener) (*Logs, error) {
	lvl, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("logging: level %q: %w", cfg.Level, err)
	}
	if open == nil {
		open = plainFile
	}
	ls := &Logs{}
	var out io.Writer = stderr
	if cfg.File != "" {
		f, err := open(cfg.File, int64(cfg.MaxSizeMB)<<20, cfg.MaxFiles)
		if err != nil {
			return nil, fmt.Errorf("logging: opening %s: %w", cfg.File, err)
		}
		ls.closers = append(ls.closers, f)
		out = f
	}
	auditOut := out
	if cfg.AuditFile != "" {
		f, err := open(cfg.AuditFile, int64(cfg.MaxSizeMB)<<20, cfg.MaxFiles)
		if err != nil {
			ls.Close()
			return nil, fmt.Errorf("logging: opening %s: %w", cfg.AuditFile, err)
		}
		ls.closers = append(ls.closers, f)
		auditOut = f
	}
	if cfg.Format == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly}
	}
	ls.Log = zerolog.New(out).Level(lvl).With().Timestamp().Logger()
	// Audit records are always JSON, always written, whatever the level. The
	// resolver writes each record's own "time" field.
	ls.Audit = zerolog.New(auditOut).With().Str("stream", "audit").Logger()
	return ls, nil
}

// plainFile never rotates, but opens the file with platform/logfile's
// checks: never through a symlink, never another owner's file, never in a
// directory others can write to.
func plainFile(path string, _ int64, _ int) (io.WriteCloser, error) {
	return logfile.Open(path, logfile.Options{MaxBytes: math.MaxInt64, MaxFiles: 1})
}

func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.DurationFieldInteger = false
}

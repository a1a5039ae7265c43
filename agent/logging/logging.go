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
	"sync/atomic"
	"time"

	"github.com/credagent/credagent/platform/logfile"
	"github.com/rs/zerolog"
)

// FileOpener opens a size-rotating log file. The daemon passes the one from
// platform/logfile; tests may pass a plain file opener.
type FileOpener func(path string, maxBytes int64, maxFiles int) (io.WriteCloser, error)

// Options say where the streams go. The daemon fills them from the
// config's log section.
type Options struct {
	// Level is the operational log's level: trace, debug, info, warn,
	// error. SetLevel changes it later.
	Level string
	// Format is json or console.
	Format string
	// File is the operational log file; empty: stderr.
	File string
	// MaxSizeMB and MaxFiles bound a log file's rotation.
	MaxSizeMB int
	MaxFiles  int
	// AuditFile receives the audit records; empty: the operational
	// destination, marked "stream":"audit".
	AuditFile string
}

// Logs holds both streams and closes what they opened.
type Logs struct {
	Log     zerolog.Logger
	Audit   zerolog.Logger
	closers []io.Closer
	level   *atomic.Int32 // the operational log's level, as a zerolog.Level
}

// SetLevel changes the operational log's level at once, for every logger
// derived from Log. The audit stream is not affected: it is always written.
func (l *Logs) SetLevel(level string) error {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return fmt.Errorf("logging: level %q: %w", level, err)
	}
	l.level.Store(int32(lvl))
	return nil
}

// Level returns the operational log's level in force.
func (l *Logs) Level() zerolog.Level { return zerolog.Level(l.level.Load()) }

// levelFilter drops the events below the level in force. The logger itself
// lets every level through, so that the level can change under loggers
// already handed out.
type levelFilter struct {
	w     io.Writer
	level *atomic.Int32
}

func (f levelFilter) Write(p []byte) (int, error) { return f.w.Write(p) }

func (f levelFilter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l != zerolog.NoLevel && int32(l) < f.level.Load() {
		return len(p), nil
	}
	return f.w.Write(p)
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
func New(cfg Options, stderr io.Writer, open FileOpener) (*Logs, error) {
	lvl, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("logging: level %q: %w", cfg.Level, err)
	}
	if open == nil {
		open = plainFile
	}
	ls := &Logs{level: new(atomic.Int32)}
	ls.level.Store(int32(lvl))
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
	ls.Log = zerolog.New(levelFilter{w: out, level: ls.level}).Level(zerolog.TraceLevel).With().Timestamp().Logger()
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

package inbox

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/state"
	"github.com/credagent/credagent/platform/fsutil"
	"github.com/rs/zerolog"
)

const (
	// MaxQuarantinedPerReason bounds the rejected files kept for one reason
	// code: the oldest are kept, later ones are logged and listed in status
	// but not kept, so that a flood of one reason (junk from the drop
	// account) cannot push out the first evidence of another.
	MaxQuarantinedPerReason = 20
	// MaxQuarantineBytes bounds the bytes of rejected files kept.
	MaxQuarantineBytes = 64 << 20
	reasonSuffix       = ".reason"
	maxReasonFileBytes = 16 << 10
)

// quarantine counts what the rejected directory holds, by reason.
type quarantine struct {
	perReason map[string]int
	bytes     int64
}

// full says why a new rejected file of reason and size cannot be kept, or
// "" if it can.
func (q *quarantine) full(reason string, size int64) string {
	if q.perReason[reason] >= MaxQuarantinedPerReason {
		return "the quarantine keeps the first " + strconv.Itoa(MaxQuarantinedPerReason) + " files rejected as " + reason
	}
	if q.bytes+size > MaxQuarantineBytes {
		return "the quarantine is full (" + strconv.Itoa(MaxQuarantineBytes>>20) + " MiB)"
	}
	return ""
}

func (q *quarantine) add(reason, _ string, size int64) {
	if q.perReason == nil {
		q.perReason = map[string]int{}
	}
	q.perReason[reason]++
	q.bytes += size
}

// load counts the rejected directory and returns the rejections its reason
// files record, oldest first, at most state.MaxRejections, for status after
// a restart. Each file counts for at most maxBytes, as when it was kept: one
// huge or sparse file (moved in whole by an earlier version) must not leave
// the quarantine full for good.
func (q *quarantine) load(dir string, maxBytes int64, log zerolog.Logger) []state.Rejection {
	q.perReason, q.bytes = map[string]int{}, 0
	ents, err := os.ReadDir(dir)
	if err != nil {
		log.Warn().Err(err).Str("dir", dir).Msg("inbox: cannot read the rejected directory")
		return nil
	}
	var out []state.Rejection
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if !strings.HasSuffix(name, reasonSuffix) {
			if fi, err := e.Info(); err == nil {
				q.bytes += min(fi.Size(), maxBytes)
			}
			continue
		}
		b, err := fsutil.ReadPrivateFile(filepath.Join(dir, name), maxReasonFileBytes)
		if err != nil {
			log.Warn().Err(err).Str("file", printable(name)).Msg("inbox: cannot read a reason file")
			continue
		}
		f := parseReason(string(b))
		if f["reason"] == "" {
			continue
		}
		if k := f["kept"]; k == "" || k == "yes" || strings.HasPrefix(k, "yes") || strings.HasPrefix(k, "partly") {
			q.perReason[f["reason"]]++
		}
		r := state.Rejection{File: f["file"], DeliveryID: f["delivery"], Kind: f["kind"], Reason: f["reason"] + ": " + f["error"]}
		r.At, _ = time.Parse(time.RFC3339Nano, f["at"])
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if len(out) > state.MaxRejections {
		out = out[len(out)-state.MaxRejections:]
	}
	return out
}

// parseReason reads the "key: value" lines of a reason file. Values were
// written through printable, so each is on one line; a quoted one is
// shown as it was written.
func parseReason(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if ok {
			if _, dup := out[k]; !dup {
				out[k] = v
			}
		}
	}
	return out
}

package inbox

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/credagent/credagent/agent/delivery"
)

// blockedRecord is a record that cannot be read or no longer parses or
// verifies. Its sequence number is unknown, so an older delivery of its
// object could otherwise be accepted again: every delivery of the object
// waits in the inbox until an operator restores the record from a backup
// (it is then loaded at the next start) or removes it, which accepts that
// an older delivery of the object may be applied again.
type blockedRecord struct {
	kind delivery.Kind
	stem string // the record's name up to its first '.'
}

// block remembers a record that cannot be used and says so in status. The
// caller holds mu.
func (in *Inbox) block(path string, k delivery.Kind, err error) {
	stem, _, _ := strings.Cut(filepath.Base(path), ".")
	in.blocked[path] = blockedRecord{kind: k, stem: stem}
	in.o.Log.Error().Err(err).Str("record", path).
		Msg("inbox: a record cannot be read or no longer verifies; deliveries of its object wait until an operator restores it from a backup or removes it")
	in.setProblem("record:"+path, "the record "+printable(path)+" cannot be read or no longer verifies ("+err.Error()+
		"); deliveries of its object wait in the inbox until it is restored from a backup, or removed (removing it lets an older delivery of that object be applied again)")
}

// blockedFor returns the blocked record that may be o's, or "". A record
// the operator has removed since is forgotten. The caller holds mu.
func (in *Inbox) blockedFor(o delivery.Object) string {
	kind := o.Kind
	for path, b := range in.blocked {
		if b.kind != kind || (b.stem != objectStem(o) && (o.Owner != "" || b.stem != legacyStem(o.Name))) {
			continue
		}
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			delete(in.blocked, path)
			in.setProblem("record:"+path, "")
			in.o.Log.Warn().Str("record", path).Msg("inbox: a record that could not be read was removed by an operator; its object takes deliveries again")
			continue
		}
		return path
	}
	return ""
}

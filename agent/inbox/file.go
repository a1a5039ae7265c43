package inbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/credagent/credagent/agent/delivery"
)

// errCrossDevice: the rejected directory is on another file system than the
// inbox, so a rejected file is copied there, not renamed.
var errCrossDevice = errors.New("inbox: the inbox and the state directory are on different file systems")

// errReplaced: another file has taken the name of the file being handled
// since it was opened. That file is handled in its turn.
var errReplaced = errors.New("replaced under its name since it was opened; left for the next scan")

// readDelivery opens the inbox entry name through the inbox's handle
// without following a symlink, checks on the opened file (not the path)
// that it is a regular file, that its owner may deliver, and that it is
// within max bytes, and reads it. The file is returned open (its handle is
// what is later removed or moved out); the caller closes it. A refusal of
// the file itself (refusal reports true) is the delivery's fault; any other
// error is the machine's (too many open files, an I/O error, a permission
// the agent lacks) and the file is left for the next scan.
func readDelivery(d *inboxDir, name string, max int64, owners ownerSet) (b []byte, fi os.FileInfo, f *os.File, err error) {
	f, err = d.openEntry(name)
	if err != nil {
		// The agent may be denied a file (its unit keeps no
		// CAP_DAC_OVERRIDE): if a user who may not deliver owns it, that
		// is the refusal (check 0), not a problem of the machine's.
		if errors.Is(err, fs.ErrPermission) {
			if ferr := d.checkOwnerUnopened(name, owners); ferr != nil {
				return nil, nil, nil, ferr
			}
		}
		return nil, nil, nil, err
	}
	defer func() {
		if err != nil && !refusal(err) {
			f.Close()
			f = nil
		}
	}()
	if fi, err = f.Stat(); err != nil {
		return nil, nil, f, err
	}
	if err := owners.check(f, fi); err != nil {
		return nil, fi, f, err
	}
	if fi.Size() > max {
		return nil, fi, f, fmt.Errorf("%w: %d bytes, limit %d", delivery.ErrTooLarge, fi.Size(), max)
	}
	b, err = io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fi, f, err
	}
	if int64(len(b)) > max {
		return nil, fi, f, fmt.Errorf("%w: more than %d bytes", delivery.ErrTooLarge, max)
	}
	return b, fi, f, nil
}

// refusal reports whether err refuses the inbox file itself (check 0 and 1
// of SPEC section 5), as opposed to an error of the machine reading it.
func refusal(err error) bool {
	return errors.Is(err, ErrSymlink) || errors.Is(err, ErrNotRegular) || errors.Is(err, ErrForeignOwner) ||
		errors.Is(err, delivery.ErrTooLarge)
}

// printable returns name as it may be printed in a log, a reason file or
// status: unchanged if it is made of printable characters other than
// quotes and backslashes, otherwise Go-quoted, so that a newline or other
// control character in a file name can never start a line of its own.
func printable(name string) string {
	// A backslash is quoted where it could read as an escape; on Windows
	// it is the path separator, and paths print as they are.
	backslash := filepath.Separator != '\\' && strings.ContainsRune(name, '\\')
	if !utf8.ValidString(name) || strings.ContainsRune(name, '"') || backslash || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(name)
	}
	return name
}

// quarantineName is the name a rejected file gets in the rejected
// directory after its time stamp: the file's name with every character
// but letters, digits, '.', '_' and '-' replaced, cut to 64 bytes, and,
// when it had to be changed, a short hash of the real name (which the
// reason file gives in full, quoted).
func quarantineName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 64 {
			break
		}
	}
	s := b.String()
	if s == name {
		return s
	}
	h := sha256.Sum256([]byte(name))
	return s + "~" + hex.EncodeToString(h[:4])
}

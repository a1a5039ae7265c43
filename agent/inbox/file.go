package inbox

import (
	"fmt"
	"io"
	"os"

	"github.com/credagent/credagent/agent/delivery"
)

// readDelivery reads an inbox file without following a symlink, checking on
// the opened file (not the path) that it is the regular file that was
// looked at, that its owner may deliver, and that it is within max bytes.
func readDelivery(path string, max int64, owners ownerSet) ([]byte, os.FileInfo, error) {
	lfi, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if lfi.Mode()&os.ModeSymlink != 0 {
		return nil, lfi, ErrSymlink
	}
	if !lfi.Mode().IsRegular() {
		return nil, lfi, fmt.Errorf("%w: mode %s", ErrNotRegular, lfi.Mode())
	}
	f, err := openNoFollow(path)
	if err != nil {
		return nil, lfi, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, lfi, err
	}
	if !fi.Mode().IsRegular() || !os.SameFile(lfi, fi) {
		return nil, lfi, fmt.Errorf("%w: replaced while being opened", ErrNotRegular)
	}
	if err := owners.check(f, fi); err != nil {
		return nil, fi, err
	}
	if fi.Size() > max {
		return nil, fi, fmt.Errorf("%w: %d bytes, limit %d", delivery.ErrTooLarge, fi.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fi, err
	}
	if int64(len(b)) > max {
		return nil, fi, fmt.Errorf("%w: more than %d bytes", delivery.ErrTooLarge, max)
	}
	return b, fi, nil
}

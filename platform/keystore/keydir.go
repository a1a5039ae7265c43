package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/credagent/credagent/platform/fsutil"
)

// keyDir is a directory of private files, one per key, <dir>/<name><ext>:
// the file backend's keys and the tpm backend's wrapped blobs. It maps the
// file system's answers onto the Store contract's errors.
type keyDir struct {
	dir string
	ext string
}

// maxKeyFileBytes bounds a key file: a PEM P-256 key is about 240 bytes, a TPM
// blob about 300.
const maxKeyFileBytes = 16 << 10

// openKeyDir makes dir private (0700), creating it if needed, and refuses it
// if others can get in.
func openKeyDir(dir, ext string) (keyDir, error) {
	if err := fsutil.MkdirPrivate(dir); err != nil {
		return keyDir{}, insecure(err)
	}
	return keyDir{dir: dir, ext: ext}, nil
}

// path is the file that holds the key called name.
func (d keyDir) path(name string) string { return filepath.Join(d.dir, name+d.ext) }

// exists reports whether something is at the key's path, for a store that
// would rather not do costly work for a Create bound to fail.
func (d keyDir) exists(name string) bool {
	_, err := os.Lstat(d.path(name))
	return err == nil
}

// read returns the content of the key file called name, checked private. A
// missing file is ErrNotFound; one that is not private wraps ErrInsecure.
func (d keyDir) read(name string) ([]byte, error) {
	data, err := fsutil.ReadPrivateFile(d.path(name), maxKeyFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, insecure(err)
	}
	return data, nil
}

// create writes the key file called name, atomically and exclusively: of
// two racing creates (two enrol runs) one wins and the other gets
// ErrExists; neither overwrites the other's key.
func (d keyDir) create(name string, data []byte) error {
	err := fsutil.CreatePrivateFile(d.path(name), data)
	if errors.Is(err, fs.ErrExist) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// remove implements Store.Delete: deleting a missing key is not an error.
func (d keyDir) remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := os.Remove(d.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// rename implements Renamer: one rename(2), which replaces the target. It
// does not flush the directory: after a power cut the rename may be undone,
// which leaves both keys in place, a state OpenAll handles.
func (d keyDir) rename(from, to string) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	err := os.Rename(d.path(from), d.path(to))
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// insecure wraps an fsutil refusal so that it also matches ErrInsecure of
// this package; other errors pass through.
func insecure(err error) error {
	if fsutil.IsInsecure(err) {
		return fmt.Errorf("%w: %w", ErrInsecure, err)
	}
	return fmt.Errorf("keystore: %w", err)
}

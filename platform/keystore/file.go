package keystore

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/credagent/credagent/platform/fsutil"
)

// The file backend
//
// Each key is one file, <dir>/<name>.key: a PEM "PRIVATE KEY" block holding
// the P-256 key as PKCS#8 (RFC 5208; the same format as `openssl genpkey
// -algorithm EC -pkeyopt ec_paramgen_curve:P-256`). The directory is made
// private (0700) and the file is written atomically, 0600, never through a
// symlink (fsutil.WritePrivateFile). Every open checks the opened file's
// owner (the effective uid), mode (no group or other bits), type (regular)
// and link count (one); a file that fails is refused with an error wrapping
// ErrInsecure that says what is wrong and how to fix it.
//
// The key is in the clear on disk: it is only as safe as root on this
// machine. Prefer the tpm backend where there is a TPM.

// FileExt is the extension of the file backend's key files.
const FileExt = ".key"

// maxKeyFile bounds a key file; a PEM P-256 key is about 240 bytes.
const maxKeyFile = 16 << 10

// FileStore keeps keys in private files in one directory.
type FileStore struct {
	dir  string
	note string // why auto chose this backend, for Info
}

var _ Store = (*FileStore)(nil)

// OpenFileStore returns the file store over dir, creating dir (0700) if
// needed and refusing it if others can get in.
func OpenFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("keystore: file backend needs a directory")
	}
	if err := fsutil.MkdirPrivate(dir); err != nil {
		return nil, insecure(err)
	}
	return &FileStore{dir: dir}, nil
}

// KeyPath is the file that holds the key called name.
func (s *FileStore) KeyPath(name string) string { return filepath.Join(s.dir, name+FileExt) }

// Create implements Store.
func (s *FileStore) Create(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := s.KeyPath(name)
	if _, err := os.Lstat(p); err == nil {
		return nil, ErrExists
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keystore: encoding key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	// Exclusive: of two racing creates (two enrol runs), one wins and the
	// other gets ErrExists; neither overwrites the other's key.
	err = fsutil.CreatePrivateFile(p, data)
	clear(data)
	if errors.Is(err, fs.ErrExist) {
		return nil, ErrExists
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	return newSoftKey(priv), nil
}

// Open implements Store.
func (s *FileStore) Open(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := s.KeyPath(name)
	data, err := fsutil.ReadPrivateFile(p, maxKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, insecure(err)
	}
	defer clear(data)
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s is not a PEM PRIVATE KEY", ErrNeedsReenroll, p)
	}
	defer clear(block.Bytes)
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNeedsReenroll, p, err)
	}
	type ecdher interface {
		ECDH() (*ecdh.PrivateKey, error)
	}
	ek, ok := parsed.(ecdher)
	if !ok {
		return nil, fmt.Errorf("%w: %s does not hold an EC key", ErrNeedsReenroll, p)
	}
	priv, err := ek.ECDH()
	if err != nil || priv.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: %s does not hold a P-256 key", ErrNeedsReenroll, p)
	}
	return newSoftKey(priv), nil
}

// Delete implements Store.
func (s *FileStore) Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := os.Remove(s.KeyPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// Rename implements Renamer: one rename(2), which replaces the target. It
// does not flush the directory: after a power cut the rename may be undone,
// which leaves both keys in place, a state OpenAll handles.
func (s *FileStore) Rename(from, to string) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	err := os.Rename(s.KeyPath(from), s.KeyPath(to))
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// Info implements Store.
func (s *FileStore) Info() Info {
	d := s.dir
	if s.note != "" {
		d += "; " + s.note
	}
	return Info{Backend: BackendFile, Detail: d}
}

// Close implements Store.
func (s *FileStore) Close() error { return nil }

// insecure wraps an fsutil refusal so that it also matches ErrInsecure of
// this package; other errors pass through.
func insecure(err error) error {
	if fsutil.IsInsecure(err) {
		return fmt.Errorf("%w: %w", ErrInsecure, err)
	}
	return fmt.Errorf("keystore: %w", err)
}

package keystore

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// The file backend
//
// Each key is one file, <dir>/<name>.key: a PEM "PRIVATE KEY" block holding
// the P-256 key as PKCS#8 (RFC 5208; the same format as `openssl genpkey
// -algorithm EC -pkeyopt ec_paramgen_curve:P-256`). The directory is made
// private (0700) and the file is written atomically, 0600, never through a
// symlink (fsutil.CreatePrivateFile). Every open checks the opened file's
// owner (the effective uid), mode (no group or other bits), type (regular)
// and link count (one); a file that fails is refused with an error wrapping
// ErrInsecure that says what is wrong and how to fix it.
//
// The key is in the clear on disk: it is only as safe as root on this
// machine. Prefer the tpm backend where there is a TPM.

// FileExt is the extension of the file backend's key files.
const FileExt = ".key"

// FileStore keeps keys in private files in one directory.
type FileStore struct {
	files keyDir
	note  string // why auto chose this backend, for Info
}

var _ Store = (*FileStore)(nil)

// OpenFileStore returns the file store over dir, creating dir (0700) if
// needed and refusing it if others can get in.
func OpenFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("keystore: file backend needs a directory")
	}
	d, err := openKeyDir(dir, FileExt)
	if err != nil {
		return nil, err
	}
	return &FileStore{files: d}, nil
}

// KeyPath is the file that holds the key called name.
func (s *FileStore) KeyPath(name string) string { return s.files.path(name) }

// Create implements Store.
func (s *FileStore) Create(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
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
	err = s.files.create(name, data)
	clear(data)
	if err != nil {
		return nil, err
	}
	return newSoftKey(priv), nil
}

// Open implements Store.
func (s *FileStore) Open(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	data, err := s.files.read(name)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	p := s.files.path(name)
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
func (s *FileStore) Delete(name string) error { return s.files.remove(name) }

// Rename implements Renamer.
func (s *FileStore) Rename(from, to string) error { return s.files.rename(from, to) }

// Info implements Store.
func (s *FileStore) Info() Info {
	d := s.files.dir
	if s.note != "" {
		d += "; " + s.note
	}
	return Info{Backend: BackendFile, Detail: d}
}

// Close implements Store.
func (s *FileStore) Close() error { return nil }

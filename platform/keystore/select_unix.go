//go:build !windows

package keystore

import (
	"os"
	"path/filepath"
	"strings"
)

// openAuto picks tpm or file.
//
// A directory that already holds keys decides: blobs (*.tpmkey) mean tpm
// and the TPM must work (falling back to a file would silently make a new
// key); key files (*.key) mean file. Otherwise the TPM is used if its
// device exists and answers, else the file backend.
func openAuto(opts Options) (Store, error) {
	if has(opts.Dir, TPMFileExt) {
		return openTPM(opts)
	}
	if has(opts.Dir, FileExt) {
		return OpenFileStore(opts.Dir)
	}
	note := "no TPM at " + opts.TPMDevice
	if tpmPresent(opts.TPMDevice) {
		s, err := openTPM(opts)
		if err == nil {
			return s, nil
		}
		note = "TPM unusable: " + err.Error()
	}
	fs, err := OpenFileStore(opts.Dir)
	if err != nil {
		return nil, err
	}
	fs.note = note
	return fs, nil
}

// has reports whether dir holds a file with the extension ext.
func has(dir, ext string) bool {
	if dir == "" {
		return false
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
	return len(m) > 0
}

func tpmPresent(device string) bool {
	if strings.HasPrefix(device, "tcp://") || strings.HasPrefix(device, "unix://") {
		return true
	}
	_, err := os.Stat(device)
	return err == nil
}

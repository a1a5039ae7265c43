package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/fsutil"
)

// Dev-mode file names under the dev directory.
const (
	DevSigningKeyFile = "portal-signing.key" // the dev portal's private signing key (PEM PKCS#8)
	DevSigningPubFile = "portal-signing.pub" // its public key (PEM), pinned by the agent
	DevRegistration   = enroll.FileName      // in the state directory: this machine's registration document
)

// DevConfig prepares dir for dev mode and returns its configuration: a file
// key store, the inbox, the state and the socket under dir, a dev portal
// signing key pair that the agent trusts, and a policy that admits only the
// user who started it. A config.yaml in dir, if present, is loaded over
// those defaults; signing keys it pins are added to the dev key, never
// instead of it.
func DevConfig(dir string) (config.Config, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return config.Config{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return config.Config{}, fmt.Errorf("dev: %w", err)
	}
	pub, err := ensureDevSigningKey(dir)
	if err != nil {
		return config.Config{}, err
	}
	base := config.DevDefault(dir)
	base.Portal.SigningKeys = []string{pub}
	rule, err := currentUserRule()
	if err != nil {
		return config.Config{}, err
	}
	base.Policy.Rules = []config.Rule{rule}

	cfgPath := filepath.Join(dir, "config.yaml")
	if _, err := os.Stat(cfgPath); err == nil {
		c, err := config.LoadOver(base, cfgPath)
		if err != nil {
			return config.Config{}, err
		}
		if !slices.Contains(c.Portal.SigningKeys, pub) {
			c.Portal.SigningKeys = append([]string{pub}, c.Portal.SigningKeys...)
		}
		return c, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return config.Config{}, err
	}
	if err := base.Validate(); err != nil {
		return config.Config{}, err
	}
	return base, nil
}

// currentUserRule admits only the user running dev mode.
func currentUserRule() (config.Rule, error) {
	r := config.Rule{Name: "dev-user", Credentials: []string{"*"}}
	if runtime.GOOS == "windows" {
		u, err := user.Current()
		if err != nil {
			return r, fmt.Errorf("dev: current user: %w", err)
		}
		r.SIDs = []string{u.Uid} // on Windows, Uid is the user's SID
		return r, nil
	}
	r.UIDs = []uint32{uint32(os.Getuid())}
	return r, nil
}

// ensureDevSigningKey creates the dev portal's Ed25519 signing key pair if it
// is missing and returns the public key as PEM.
func ensureDevSigningKey(dir string) (string, error) {
	privPath := filepath.Join(dir, DevSigningKeyFile)
	pubPath := filepath.Join(dir, DevSigningPubFile)
	if b, err := os.ReadFile(pubPath); err == nil {
		if _, err := os.Stat(privPath); err == nil {
			return string(b), nil
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	// Atomic, created 0600 whatever was there before.
	if err := fsutil.WritePrivateFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", fmt.Errorf("dev: writing signing key: %w", err)
	}
	if err := fsutil.WritePrivateFile(pubPath, pubPEM); err != nil {
		return "", fmt.Errorf("dev: writing signing key: %w", err)
	}
	return string(pubPEM), nil
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/config"
	"github.com/credagent/credagent/platform/fsutil"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/credagent/credagent/platform/paths"
)

// enrollOptions are the flags of `credagent enroll`.
type enrollOptions struct {
	config string
	dev    string
	out    string
	rotate bool
}

func init() {
	var o enrollOptions
	register(&command{
		name:    "enroll",
		summary: "create the machine key if needed and write the registration for the portal",
		usage: `credagent enroll [--config FILE] [--dev DIR] [--out FILE] [--rotate]

Creates the machine key in the configured key store if it does not exist
(an existing key is kept), writes the registration document the portal
needs (machine ID, host name, OS, agent version, HPKE suite, public key and
fingerprint) and prints the fingerprint, to compare with what the portal
shows. --out - writes the document to standard output.

--rotate creates a second key (<key_name>.next) and writes its registration.
The current key stays in use, so deliveries already sealed to it still open.
Once a delivery sealed to the new key has arrived, the agent makes the new
key the current one and destroys the old one.

If the key can no longer be used (the TPM was cleared), run
'credagent enroll --rotate': the new key replaces the dead one, and the
portal must re-send what was sealed to the old key.

Examples:
  sudo credagent enroll
  credagent enroll --dev ./dev --out ./dev/registration.json
  sudo credagent enroll --rotate`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&o.config, "config", "", "config file (default: "+paths.Default().ConfigFile+" if it exists)")
			fs.StringVar(&o.dev, "dev", "", "dev mode: keep everything under `DIR`, key in a file")
			fs.StringVar(&o.out, "out", "", "write the registration to `FILE` (default: <state dir>/registration.json; - for stdout)")
			fs.BoolVar(&o.rotate, "rotate", false, "create a new key to replace the current one")
		},
		run: func(args []string, stdout, stderr io.Writer) error {
			if len(args) > 0 {
				return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", args)}
			}
			return runEnroll(o, stdout, stderr, time.Now())
		},
	})
}

// enrollConfig loads the configuration the flags name.
func enrollConfig(o enrollOptions) (config.Config, error) {
	switch {
	case o.dev != "":
		dir, err := filepath.Abs(o.dev)
		if err != nil {
			return config.Config{}, err
		}
		base := config.DevDefault(dir)
		if o.config != "" {
			return config.LoadOver(base, o.config)
		}
		return base, nil
	case o.config != "":
		return config.Load(o.config)
	}
	def := paths.Default().ConfigFile
	if _, err := os.Stat(def); err == nil {
		return config.Load(def)
	}
	return config.Default(), nil
}

func runEnroll(o enrollOptions, stdout, stderr io.Writer, now time.Time) error {
	cfg, err := enrollConfig(o)
	if err != nil {
		return err
	}
	store, err := openKeyStore(cfg.KeyStore)
	if err != nil {
		return err
	}
	defer store.Close()
	name := cfg.KeyStore.KeyName

	var (
		key    keystore.Key
		status string
	)
	cur, curErr := store.Open(name)
	switch {
	case errors.Is(curErr, keystore.ErrNotFound):
		// No key yet: --rotate has nothing to rotate, so both make one,
		// but only --rotate replaces a key that sealed records or a
		// registration show this machine had.
		what := inbox.SealedState(cfg.Paths.StateDir, enroll.FileName)
		if what != "" && !o.rotate {
			return errors.New(inbox.MissingKeyProblem(name, what))
		}
		if key, err = store.Create(name); err != nil {
			return err
		}
		status = "created"
		if what != "" {
			status = "created; it replaces a lost key: the portal must re-seal the applications to it"
		}
	case o.rotate && (curErr == nil || errors.Is(curErr, keystore.ErrNeedsReenroll)):
		var created bool
		if key, created, err = keystore.Rotate(store, name); err != nil {
			return err
		}
		status = "rotation: new key " + keystore.PendingName(name) + " created"
		if !created {
			status = "rotation already in progress: kept the pending key " + keystore.PendingName(name)
		}
		if curErr != nil {
			status += "; it replaces the unusable current key"
		} else {
			status += "; the current key stays until a delivery sealed to the new one arrives"
		}
	case errors.Is(curErr, keystore.ErrNeedsReenroll):
		return fmt.Errorf("%w\nThe machine must be enrolled again: run 'credagent enroll --rotate' and send the new registration to the portal", curErr)
	case curErr != nil:
		return curErr
	default:
		key, status = cur, "kept the existing key"
		// During a rotation the portal must seal to the pending key.
		if next, err := store.Open(keystore.PendingName(name)); err == nil {
			key, status = next, "rotation in progress: registering the pending key "+keystore.PendingName(name)
		} else if !errors.Is(err, keystore.ErrNotFound) {
			return err
		}
	}

	reg := enroll.ForThisMachine(cfg.MachineID, store.Info(), key.PublicKey(), now)
	doc, err := reg.Marshal()
	if err != nil {
		return err
	}
	out := o.out
	if out == "" {
		out = filepath.Join(cfg.Paths.StateDir, enroll.FileName)
		if err := os.MkdirAll(cfg.Paths.StateDir, 0o700); err != nil {
			return err
		}
	}
	if out == "-" {
		if _, err := stdout.Write(doc); err != nil {
			return err
		}
	} else if err := fsutil.WritePrivateFile(out, doc); err != nil {
		return err
	}

	info := store.Info()
	hw := "software key"
	if info.HardwareBacked {
		hw = "hardware-backed"
	}
	w := stdout
	if out == "-" {
		w = stderr // keep stdout for the document
	}
	fmt.Fprintf(w, "Machine key:  %s: %s\n", name, status)
	fmt.Fprintf(w, "Key store:    %s, %s (%s)\n", info.Backend, hw, info.Detail)
	fmt.Fprintf(w, "Machine ID:   %s\n", reg.MachineID)
	fmt.Fprintf(w, "Key ID:       %s\n", reg.KeyID)
	fmt.Fprintf(w, "Fingerprint:  %s\n", reg.Fingerprint)
	if out != "-" {
		fmt.Fprintf(w, "Registration: %s\n", out)
	}
	fmt.Fprintln(w, "\nSend the registration to the portal, and check that the fingerprint the portal shows is the one above.")
	return nil
}

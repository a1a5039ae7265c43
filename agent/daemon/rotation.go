package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/credagent/credagent/agent/enroll"
	"github.com/credagent/credagent/agent/inbox"
	"github.com/credagent/credagent/platform/fsutil"
	"github.com/credagent/credagent/platform/keystore"
	"github.com/rs/zerolog"
)

// machineKeys opens the machine key, creating it on first start. A key that
// exists but cannot be used is not fatal: it is reported as needing
// re-enrolment, so the service does not crash-loop.
func machineKeys(ks keystore.Store, s restartSettings, log zerolog.Logger) (keystore.Keys, string, error) {
	keys, err := keystore.OpenAll(ks, s.KeyName)
	switch {
	case err == nil:
	case errors.Is(err, keystore.ErrNotFound):
		if what := inbox.SealedState(s.Inbox.StateDir, enroll.FileName); what != "" {
			// Not a first start: the key was lost or removed. A new one
			// would open none of the records; the operator re-enrols.
			return keystore.Keys{}, inbox.MissingKeyProblem(s.KeyName, what), nil
		}
		k, cerr := ks.Create(s.KeyName)
		if cerr != nil {
			if errors.Is(cerr, keystore.ErrNeedsReenroll) {
				return keystore.Keys{}, cerr.Error(), nil
			}
			return keystore.Keys{}, "", fmt.Errorf("creating the machine key: %w", cerr)
		}
		keys = keystore.Keys{Current: k}
		log.Info().Str("key_id", k.ID()).Str("backend", ks.Info().Backend).Msg("created the machine key")
	case errors.Is(err, keystore.ErrNeedsReenroll):
		return keystore.Keys{}, err.Error(), nil
	case errors.Is(err, keystore.ErrInsecure):
		// The key may have been exposed: do not use it. Run without it, as
		// for re-enrolment, rather than crash-loop under the service manager.
		return keystore.Keys{}, "the machine key's storage is not private, so the key is not used: " + err.Error(), nil
	default:
		return keystore.Keys{}, "", fmt.Errorf("opening the machine key: %w", err)
	}
	// During a rotation the registration names the pending key, so that the
	// portal seals new deliveries to it.
	if k := registeredKey(keys); k != nil {
		if err := writeRegistration(s.Inbox.StateDir, s.MachineID, ks.Info(), k); err != nil {
			log.Warn().Err(err).Msg("could not write the registration document")
		}
	}
	return keys, "", nil
}

func registeredKey(keys keystore.Keys) keystore.Key {
	if keys.Pending != nil {
		return keys.Pending
	}
	return keys.Current
}

// finishRotation ends a machine-key rotation: once something sealed to the
// pending key is in force and nothing in force is sealed to the old key, the
// pending key is promoted (the old one is destroyed). Until then both keys
// open deliveries. The registration document already names the pending key
// (machineKeys wrote it so), so it stays as it is.
func finishRotation(ctx context.Context, ks keystore.Store, keyName string, keys keystore.Keys, in *inbox.Inbox, applied <-chan struct{}, log zerolog.Logger) {
	oldID, newID := "", keys.Pending.ID()
	if keys.Current != nil {
		oldID = keys.Current.ID()
	}
	for {
		counts := in.SealedTo()
		if counts[newID] > 0 && (oldID == "" || counts[oldID] == 0) {
			if err := keystore.Promote(ks, keyName); err != nil {
				log.Error().Err(err).Str("new_key_id", newID).Msg("could not promote the pending machine key; both keys stay in use")
				return
			}
			log.Info().Str("old_key_id", oldID).Str("key_id", newID).Msg("machine key rotation finished: the pending key is now the machine key, the old one is destroyed")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-applied:
		}
	}
}

// writeRegistration writes StateDir/registration.json for the current key
// unless one for this key is already there.
func writeRegistration(stateDir, machineID string, info keystore.Info, k keystore.Key) error {
	path := filepath.Join(stateDir, enroll.FileName)
	if f, err := os.Open(path); err == nil {
		r, _, perr := enroll.Parse(f)
		f.Close()
		if perr == nil && r.KeyID == k.ID() {
			return nil
		}
	}
	b, err := enroll.ForThisMachine(machineID, info, k.PublicKey(), time.Now()).Marshal()
	if err != nil {
		return err
	}
	return fsutil.WritePrivateFile(path, b)
}

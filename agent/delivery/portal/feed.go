package portal

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/credagent/credagent/agent/delivery"
)

// Feed writes a feed tree (agent/delivery/SPEC.md section 8): each
// address's deliveries and its signed manifest, in an order that keeps the
// tree consistent for a reader at every instant.
type Feed struct {
	// Root is the tree's directory, served as the feed's base URL.
	Root string
	// Signer signs the manifests; it should be the key that signs the
	// deliveries, pinned by the agents.
	Signer crypto.Signer
	// Validity is how long a manifest stays valid. Default 7 days.
	Validity time.Duration
	// Grace is how long a file the manifest no longer lists stays, for
	// agents that fetched the previous manifest. Default 1 hour.
	Grace time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// Published reports one manifest written.
type Published struct {
	To      delivery.Address
	Seq     uint64
	Expires time.Time
	Added   []string // delivery IDs newly listed
	Pruned  []string // files removed after their grace period
}

func (f *Feed) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Publish adds deliveries (marshalled) to the feed: each goes into its
// address's directory, replacing the listed delivery of the same object,
// and every address touched gets a new manifest. A delivery must be sealed
// unless it is a revocation, verify under the feed's signer, and be newer
// than the delivery it replaces. Nothing is written unless every delivery
// passes.
func (f *Feed) Publish(raws [][]byte) ([]Published, error) {
	byAddr := map[delivery.Address][]*delivery.Delivery{}
	rawOf := map[*delivery.Delivery][]byte{}
	var order []delivery.Address
	for i, raw := range raws {
		d, err := delivery.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("portal: delivery %d: %w", i+1, err)
		}
		if err := d.Verify([]crypto.PublicKey{f.Signer.Public()}); err != nil {
			return nil, fmt.Errorf("portal: delivery %s: not signed by the feed's key: %w", d.ID, err)
		}
		if !d.Sealed() && d.Kind != delivery.KindRevoke {
			return nil, fmt.Errorf("portal: delivery %s: %w: a feed carries only sealed deliveries (seal the %s to the machine's or the group's key)", d.ID, delivery.ErrNotSealed, d.Kind)
		}
		if _, ok := byAddr[d.To]; !ok {
			order = append(order, d.To)
		}
		byAddr[d.To] = append(byAddr[d.To], d)
		rawOf[d] = raw
	}
	var out []Published
	for _, a := range order {
		p, err := f.publish(a, byAddr[a], rawOf)
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Refresh signs a new manifest for an address with the same deliveries, a
// higher sequence and a new expiry, and prunes what is past its grace. A
// portal runs it well within Validity, also when nothing changed.
func (f *Feed) Refresh(a delivery.Address) (Published, error) {
	return f.publish(a, nil, nil)
}

// Addresses lists the addresses that have a manifest in the tree.
func (f *Feed) Addresses() ([]delivery.Address, error) {
	var out []delivery.Address
	for _, t := range []delivery.AddressType{delivery.ToMachine, delivery.ToGroup} {
		ents, err := os.ReadDir(filepath.Join(f.Root, string(t)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("portal: %w", err)
		}
		for _, e := range ents {
			m, _, err := f.current(filepath.Join(f.Root, string(t), e.Name()))
			if err == nil && m != nil {
				out = append(out, m.To)
			}
		}
	}
	return out, nil
}

// current reads the manifest in dir, if there is one. It must verify under
// the feed's key: a tree is never extended from a manifest the portal did
// not sign.
func (f *Feed) current(dir string) (*delivery.Manifest, []byte, error) {
	b, err := readLimited(filepath.Join(dir, delivery.ManifestName), delivery.MaxManifestBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	m, err := delivery.ParseManifest(b)
	if err == nil {
		err = m.Verify([]crypto.PublicKey{f.Signer.Public()})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("portal: the feed's current manifest in %s: %w", dir, err)
	}
	return m, b, nil
}

func (f *Feed) publish(a delivery.Address, ds []*delivery.Delivery, rawOf map[*delivery.Delivery][]byte) (Published, error) {
	validity, grace := f.Validity, f.Grace
	if validity <= 0 {
		validity = 7 * 24 * time.Hour
	}
	if grace <= 0 {
		grace = time.Hour
	}
	dir := filepath.Join(f.Root, filepath.FromSlash(delivery.FeedDir(a)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Published{}, fmt.Errorf("portal: %w", err)
	}
	prev, _, err := f.current(dir)
	if err != nil {
		return Published{}, err
	}
	now := f.now().UTC().Truncate(time.Second)
	entries := map[delivery.Object]delivery.ManifestEntry{}
	var seq uint64 = 1
	if prev != nil {
		for _, e := range prev.Deliveries {
			entries[e.Object()] = e
		}
		seq = prev.Seq + 1
	}
	seq = max(seq, uint64(now.UnixMilli()))
	p := Published{To: a, Seq: seq, Expires: now.Add(validity)}
	// 1. The deliveries, each renamed into place, before the manifest.
	for _, d := range ds {
		if old, ok := entries[d.Object()]; ok && d.Seq <= old.Seq {
			return Published{}, fmt.Errorf("portal: delivery %s: %s seq %d is not newer than the listed seq %d (%w)", d.ID, d.Object(), d.Seq, old.Seq, delivery.ErrReplay)
		}
		raw := rawOf[d]
		if err := writeAtomic(filepath.Join(dir, d.ID+".delivery"), raw); err != nil {
			return Published{}, err
		}
		entries[d.Object()] = delivery.EntryFor(d, raw)
		p.Added = append(p.Added, d.ID)
	}
	list := make([]delivery.ManifestEntry, 0, len(entries))
	for _, e := range entries {
		list = append(list, e)
	}
	m, err := delivery.CreateManifest(a, seq, now, now.Add(validity), list, f.Signer)
	if err != nil {
		return Published{}, fmt.Errorf("portal: %w", err)
	}
	// 2. The manifest, renamed over the old one.
	if err := writeAtomic(filepath.Join(dir, delivery.ManifestName), m.Marshal()); err != nil {
		return Published{}, err
	}
	// 3. Files no longer listed: marked with the time they were dropped
	// (their modification time), removed once that is past the grace.
	listed := map[string]bool{}
	for _, e := range m.Deliveries {
		listed[e.ID+".delivery"] = true
	}
	wasListed := map[string]bool{}
	if prev != nil {
		for _, e := range prev.Deliveries {
			wasListed[e.ID+".delivery"] = true
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return p, fmt.Errorf("portal: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if listed[name] || !strings.HasSuffix(name, ".delivery") {
			continue
		}
		path := filepath.Join(dir, name)
		if wasListed[name] {
			os.Chtimes(path, now, now) // dropped now: the grace starts
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) >= grace {
			if err := os.Remove(path); err == nil {
				p.Pruned = append(p.Pruned, name)
			}
		}
	}
	sort.Strings(p.Pruned)
	return p, nil
}

// writeAtomic writes data to a temporary dot file in path's directory,
// readable by the web server that serves the tree, and renames it into
// place.
func writeAtomic(path string, data []byte) (err error) {
	t, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	defer func() {
		if err != nil {
			t.Close()
			os.Remove(t.Name())
		}
	}()
	if _, err = t.Write(data); err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	if err = t.Chmod(0o644); err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	if err = t.Sync(); err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	if err = t.Close(); err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	if err = replaceFile(t.Name(), path); err != nil {
		return fmt.Errorf("portal: %w", err)
	}
	return nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, fmt.Errorf("portal: %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("portal: %s: larger than %d bytes", path, limit)
	}
	return b, nil
}

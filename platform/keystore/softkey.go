package keystore

import (
	"crypto/ecdh"
	"fmt"
)

// softKey is a key held in this process's memory (memory and file
// backends). The private scalar is unexported and never printed: the
// methods that could reveal it are overridden below.
type softKey struct {
	priv *ecdh.PrivateKey
	id   string
}

var _ Key = (*softKey)(nil)

func newSoftKey(priv *ecdh.PrivateKey) *softKey {
	return &softKey{priv: priv, id: KeyID(priv.PublicKey())}
}

func (k *softKey) PublicKey() *ecdh.PublicKey { return k.priv.PublicKey() }
func (k *softKey) Curve() ecdh.Curve          { return ecdh.P256() }
func (k *softKey) ID() string                 { return k.id }

// ECDH returns the X coordinate of the shared point, as crypto/ecdh does.
func (k *softKey) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("keystore: ECDH: peer key is not P-256")
	}
	return k.priv.ECDH(peer)
}

// String and GoString keep fmt's %v and %#v from walking into the scalar.
func (k *softKey) String() string   { return "keystore.Key(" + k.id + ")" }
func (k *softKey) GoString() string { return k.String() }

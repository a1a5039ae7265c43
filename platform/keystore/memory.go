package keystore

import (
	"crypto/ecdh"
	"crypto/rand"
	"sync"
)

// MemoryStore keeps keys in this process's memory. It is for tests and
// benchmarks: its keys die with the process.
type MemoryStore struct {
	keys *memKeys
}

type memKeys struct {
	mu sync.Mutex
	m  map[string]*ecdh.PrivateKey
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{keys: &memKeys{m: map[string]*ecdh.PrivateKey{}}}
}

// Create implements Store.
func (s *MemoryStore) Create(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	if _, ok := s.keys.m[name]; ok {
		return nil, ErrExists
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	s.keys.m[name] = priv
	return newSoftKey(priv), nil
}

// Open implements Store.
func (s *MemoryStore) Open(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	priv, ok := s.keys.m[name]
	if !ok {
		return nil, ErrNotFound
	}
	return newSoftKey(priv), nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	delete(s.keys.m, name)
	return nil
}

// Rename implements Renamer.
func (s *MemoryStore) Rename(from, to string) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	s.keys.mu.Lock()
	defer s.keys.mu.Unlock()
	priv, ok := s.keys.m[from]
	if !ok {
		return ErrNotFound
	}
	s.keys.m[to] = priv
	delete(s.keys.m, from)
	return nil
}

// Info implements Store.
func (s *MemoryStore) Info() Info {
	return Info{Backend: BackendMemory, Detail: "process memory (tests only)"}
}

// Close implements Store.
func (s *MemoryStore) Close() error { return nil }

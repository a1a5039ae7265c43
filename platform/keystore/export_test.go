package keystore

// Reopen returns a new store over the same keys, as if the process had
// restarted with the keys kept: the contract suite's "restart".
func (s *MemoryStore) Reopen() *MemoryStore { return &MemoryStore{keys: s.keys} }

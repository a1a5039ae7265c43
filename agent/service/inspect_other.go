//go:build !windows

package service

// Inspect has nothing to report outside Windows: the systemd unit the
// packages ship carries the service's settings.
func (m Manager) Inspect() []Finding { return nil }

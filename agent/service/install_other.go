//go:build !linux && !windows

package service

import "errors"

var errUnsupported = errors.New("service: installing is supported on Linux (systemd) and Windows only")

func (m Manager) install(InstallOptions) (InstallResult, error) {
	return InstallResult{}, errUnsupported
}
func (m Manager) configure(InstallOptions) ([]string, error) { return nil, errUnsupported }
func (m Manager) uninstall() error                           { return errUnsupported }
func reload() error                                          { return errUnsupported }

func canQuery() error { return errUnsupported }
